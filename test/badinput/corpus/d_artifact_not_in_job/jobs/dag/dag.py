from airflow import DAG

with DAG(dag_id="${project.name}__dag", tags=["${release.version}"]) as dag:
    WHEEL = "${artifact.score}"
    SCHEMA = "${var.schema}"
