from datetime import datetime

from airflow import DAG

first = DAG("mixed__first", start_date=datetime(2026, 1, 1))
second = DAG("mixed__second", start_date=datetime(2026, 1, 1))
