"""Demand forecasts per slot: when it runs out (model.py), the alert rule, the periodic job."""
