from datetime import datetime

from airflow import DAG
from airflow.operators.bash import BashOperator

DAG_ID = "orders_daily"

with DAG(dag_id=DAG_ID, start_date=datetime(2026, 1, 1), schedule="0 5 * * *", catchup=False) as dag:
    BashOperator(task_id="orders", bash_command="pip install /wheels/orders_etl-2.1.0-py3-none-any.whl && python -m orders_etl")
