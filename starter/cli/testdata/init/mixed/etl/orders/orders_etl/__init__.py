"""Orders ETL."""
