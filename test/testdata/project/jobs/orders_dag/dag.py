"""Airflow DAG for the demo project, rendered by Shipline on deploy.

Release ${release.version} at ${release.commit}, deployed to fabric ${fabric.name}.
"""
from datetime import datetime

from airflow import DAG
from airflow.operators.bash import BashOperator

with DAG(
    dag_id="${project.name}__orders_dag",
    start_date=datetime(2026, 1, 1),
    schedule="0 6 * * *",
    catchup=False,
    tags=["shipline", "${project.name}"],
) as dag:
    BashOperator(
        task_id="ingest_orders",
        bash_command="pip install '${artifact.ingest_orders}' && python -m ingest_orders --schema ${var.schema}",
    )
