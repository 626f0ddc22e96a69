"""Entry point of the score_churn pipeline."""
import argparse


def churn_score(previous_orders, recent_orders, min_orders=1):
    """Return a score in [0, 1]: 1 when a customer with enough history stopped ordering."""
    if previous_orders < min_orders:
        return 0.0
    drop = max(previous_orders - recent_orders, 0)
    return round(drop / previous_orders, 3)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="score_churn")
    parser.add_argument("--schema", required=True)
    parser.add_argument("--min-orders", type=int, default=1)
    args = parser.parse_args(argv)
    print(f"scoring churn in {args.schema} (min orders {args.min_orders})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
