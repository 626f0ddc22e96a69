from datetime import datetime

from airflow import DAG
from airflow.operators.bash import BashOperator

with DAG(dag_id="mixed__customers_load", start_date=datetime(2026, 1, 1), schedule="@daily", catchup=False) as dag:
    BashOperator(task_id="load", bash_command="pip install '${artifact.customers}' && load-customers --since {{ ds }}")
