from ingest_orders.main import parse_orders


def test_parse_orders_keeps_valid_rows():
    text = "order_id,customer,amount\n1,ann,10.5\n2,bob,-3\n3,cid,oops\n4,dan,0\n"
    rows = parse_orders(text)
    assert [r["order_id"] for r in rows] == ["1", "4"]
    assert rows[0]["amount"] == 10.5
