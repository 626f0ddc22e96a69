from datetime import datetime

from airflow.decorators import dag, task


@dag(dag_id="${project.name}__cleanup", start_date=datetime(2026, 1, 1), schedule="@weekly", catchup=False)
def cleanup():
    @task.bash
    def purge():
        return "python -m orders_etl --purge ${HOME}/tmp"

    purge()


cleanup()
