"""Shared helpers for the DAGs: imports airflow, defines no DAG."""
from airflow.models import Variable


def schema():
    return Variable.get("schema")
