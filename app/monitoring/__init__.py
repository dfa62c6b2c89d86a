"""Monitoring: the prediction log, actuals, drift, performance, alerts and their delivery (no Flask)."""
