"""Ingest orders: parse raw order lines and keep the valid ones."""
