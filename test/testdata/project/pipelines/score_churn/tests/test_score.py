from score_churn.main import churn_score


def test_churn_score():
    assert churn_score(10, 0) == 1.0
    assert churn_score(10, 5) == 0.5
    assert churn_score(4, 6) == 0.0
    assert churn_score(0, 0, min_orders=1) == 0.0
