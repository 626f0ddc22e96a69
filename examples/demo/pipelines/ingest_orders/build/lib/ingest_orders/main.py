"""Entry point of the ingest_orders pipeline."""
import argparse
import csv
import io


def parse_orders(text):
    """Parse `order_id,customer,amount` lines; drop rows with a missing or negative amount."""
    rows = []
    for rec in csv.DictReader(io.StringIO(text)):
        try:
            amount = float(rec["amount"])
        except (TypeError, ValueError):
            continue
        if amount < 0:
            continue
        rows.append({"order_id": rec["order_id"], "customer": rec["customer"], "amount": amount})
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(prog="ingest_orders")
    parser.add_argument("--schema", required=True)
    args = parser.parse_args(argv)
    print(f"ingesting orders into {args.schema}.orders")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
