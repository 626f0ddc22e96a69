from datetime import datetime

from airflow import DAG
from airflow.operators.bash import BashOperator

with DAG(
    dag_id="${project.name}__orders_dag",
    start_date=datetime(2024, 1, 1),
    schedule="@daily",
    tags=["shipline", "${release.version}"],
) as dag:
    BashOperator(
        task_id="ingest",
        # $${HOME} is expanded by bash, not by Shipline.
        bash_command="pip install ${artifact.ingest_orders} && echo $${HOME} && ingest --schema ${var.schema}",
    )
