from airflow import DAG

with DAG(dag_id="orders", tags=["${release.version}"]) as dag:
    WHEEL = "${artifact.ingest}"
    SCHEMA = "${var.schema}"
