from airflow import DAG

with DAG(dag_id="${project.name}__dag", tags=["${release.version}"]) as dag:
    WHEEL = "${artifact.ingest}"
    SCHEMA = "${var.schema}"
    if WHEEL
        pass
