"""Configuration: defaults in Config, overridden by environment variables, then by create_app's mapping."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def train_params(config: Mapping[str, Any]) -> dict[str, Any]:
    """The pipeline and model params a training of the app uses: TRAIN_MAX_SERIES, then TRAIN_PARAMS
    (tests' tiny models), which may override it."""
    max_series = int(config.get("TRAIN_MAX_SERIES", Config.TRAIN_MAX_SERIES))
    return {"max_series": max_series, **(config.get("TRAIN_PARAMS") or {})}


class Config:
    """Defaults that suit a single machine; every value can be set from the environment."""

    SECRET_KEY: str | None = None
    DATABASE_URL: str | None = None  # None: SQLite file in the instance folder
    # PostgreSQL: a request's statement waits at most this long for a lock and runs at most this long,
    # so a locked table answers 503 with Retry-After within seconds, well before the worker timeout
    # (0: no limit). A request may wait twice: the model's look at new actuals, then its own write.
    DATABASE_LOCK_TIMEOUT_SECONDS = 2.0
    DATABASE_STATEMENT_TIMEOUT_SECONDS = 5.0
    # The same for the scheduled jobs and the `flask` commands, whose statements may run for minutes.
    DATABASE_BATCH_LOCK_TIMEOUT_SECONDS = 60.0
    DATABASE_BATCH_STATEMENT_TIMEOUT_SECONDS = 1800.0
    MODELS_DIR = str(PROJECT_ROOT / "models")
    STORECAST_DATA: str | None = None  # directory with the Kaggle CSVs; None: synthetic default
    DATA_SOURCE_FILE: str | None = None  # the data recorded at first set-up; None: in the instance folder
    MLFLOW_TRACKING_URI: str | None = None  # mirror runs and versions to MLflow (optional)
    STORECAST_ADMIN_TOKEN: str | None = None
    MODEL_NAME = "storecast"
    MODEL_REFRESH_SECONDS = 5.0
    MAX_BATCH_ROWS = 100_000  # a chain-week of every store and department is about 3,000
    MAX_CONTENT_LENGTH = 10 * 1024 * 1024
    MAX_ACTUALS_BYTES = 32 * 1024 * 1024  # actual-sales uploads: a whole train.csv (12.8 MB) fits
    ACTUALS_MAX_SALES_MULTIPLE = 10.0  # weekly sales beyond this multiple of the series' largest are refused
    ACTUALS_MAX_WEEKS_AHEAD = 1  # weeks past the current week an actual may name (none in the future)
    PREDICTION_LOGGING = True
    PROXY_COUNT = 0
    SCHEDULER_ENABLED = False  # the scheduler runs as its own process: `flask scheduler`
    DRIFT_INTERVAL_MINUTES = 60
    PERFORMANCE_INTERVAL_MINUTES = 15
    ALERT_INTERVAL_MINUTES = 5
    LOOP_INTERVAL_MINUTES = 60  # how often the loop looks for a new week of actuals to publish from
    WEBHOOK_INTERVAL_MINUTES = 1
    WEBHOOK_URL: str | None = None  # alerts are posted here (JSON with `text`, as Slack accepts) when set
    WEBHOOK_TIMEOUT_SECONDS = 5.0
    DRIFT_WINDOW_HOURS = 24
    DRIFT_P_VALUE = 0.01
    DRIFT_DISTANCE_THRESHOLD = 0.1
    DRIFT_SHARE_FOR_DATASET = 0.5
    DRIFT_SAMPLE_SIZE = 5000
    PERFORMANCE_ACCURACY_DAYS = 90
    REQUEST_LOG_FLUSH_SECONDS = 1.0
    PREDICTION_LOG_RETENTION_DAYS = 180  # raw prediction rows kept (0: all); days are rolled up first
    RETENTION_INTERVAL_HOURS = 24
    FORECAST_RUN_RETENTION_WEEKS = 104  # published runs kept while they forecast a week this recent (0: all)
    DEGRADATION_FACTOR = 1.5  # live WMAE of a lag bucket over the backtest's WMAE for that bucket
    DEGRADATION_MIN_ROWS = 2000  # scored forecasts in a bucket's window before it can alert
    DEGRADATION_WINDOW_WEEKS = 4
    TRACKING_WINDOW_WEEKS = 13
    TRACKING_SIGNAL_LIMIT = 6.0
    TRACKING_MIN_BIAS_SHARE = 0.20
    TRACKING_MIN_BIAS_DOLLARS = 1000.0
    TRACKING_STORE_ROLLUP = 5
    TRACKING_STORE_ROLLUP_SHARE = 0.25
    ACTUALS_DUE_DAYS = 3  # days after a week's Friday by which its actual sales are due (else: missing)
    STORE_SHIFT_BELOW = 0.12  # a store total this far below the earlier plan, beyond the stores' common miss
    STORE_SHIFT_ABOVE = 0.14  # ... or this far above, weeks running: warning
    DEPT_COLLAPSE_SHARE = 0.8  # a department this far below its plan, relative to its peers: warning
    ERROR_RATE_THRESHOLD = 0.05
    PROMOTION_MARGIN = 0.01
    RETRAIN_ENABLED = False
    RETRAIN_INTERVAL_HOURS = 168
    RETRAIN_HOLDOUT_WEEKS = 8  # the retrain gate judges a refit on at most this many recent weeks
    SESSION_COOKIE_SAMESITE = "Lax"  # the session (and its CSRF secret) is not sent on cross-site posts
    SESSION_COOKIE_SECURE = False  # set true behind TLS: the cookie then never travels over plain HTTP
    SESSION_COOKIE_HTTPONLY = True
    TRAIN_THREADS = 0  # OpenMP/BLAS threads of a training; 0: every core but one (serving keeps one)
    TRAIN_MAX_SERIES = 4000  # series a training builds features for (a department-stratified sample; 0: all)
    FORECAST_ENGINE = "local"  # where forecast runs are computed: local (in-process) or dask
    DASK_SCHEDULER_ADDRESS: str | None = None  # tcp://host:8786 of an existing cluster; None: embedded
    DASK_WORKERS = 0  # worker processes of the embedded LocalCluster; 0: one per core
    DASK_PARTITION_SERIES = 2000  # series scored by one Dask task
    STALE_AFTER_WEEKS = 4  # production is stale when its data ends this many weeks before the newest actuals

    @classmethod
    def from_environment(cls) -> dict[str, object]:
        """Every upper-case setting, with the environment's value where one is set."""
        settings: dict[str, object] = {}
        for name in dir(cls):
            if not name.isupper():
                continue
            default = getattr(cls, name)
            raw = os.environ.get(name)
            if raw is None:
                settings[name] = default
            elif isinstance(default, bool):
                settings[name] = raw.strip().lower() in {"1", "true", "yes", "on"}
            elif isinstance(default, int):
                settings[name] = int(raw)
            elif isinstance(default, float):
                settings[name] = float(raw)
            else:
                settings[name] = raw
        return settings
