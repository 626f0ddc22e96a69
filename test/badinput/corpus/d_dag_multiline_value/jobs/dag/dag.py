from airflow import DAG

DOC = """${var.doc}"""
with DAG(dag_id="${project.name}__dag", tags=["${release.version}"]) as dag:
    WHEEL = "${artifact.ingest}"
    SCHEMA = "${var.schema}"
    print(WHEEL))
