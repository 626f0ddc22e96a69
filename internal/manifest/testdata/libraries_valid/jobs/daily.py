x = "${artifact.ingest}"
