"""Score churn: flag customers whose orders dropped."""
