"""The weekly loop, Flask-free: actual sales arrive, forecasts roll forward and are published, the
published forecasts are scored by lag, biased series and degraded buckets are flagged, and alerts
reach people. The CLI, the scheduler's jobs, `flask replay` and the tests call these functions."""
