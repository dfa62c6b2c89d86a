"""Where one API request's time goes, phase by phase, measured in-process.

The app is built in this process on the benchmark's database and model, the functions that mark each
phase are wrapped with a timer, and the request is sent through Flask's test client `n` times. What
the wrapped functions do not cover (Flask and werkzeug's dispatch, the request id, metrics, headers)
is "Flask dispatch"; what the request costs over HTTP beyond the in-process total (gunicorn reading
and writing the socket, its threads, the connection) is "gunicorn, HTTP and threads", the HTTP median
minus the in-process one. Phases are medians per request: they need not add up to the total exactly.
"""

from __future__ import annotations

import functools
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

# (phase, module, attribute): the functions whose time is the phase's. Each is called at most once
# per request and none inside another, so their times add without counting anything twice.
PHASE_FUNCTIONS: list[tuple[str, str, str]] = [
    ("parsing (JSON body)", "app.web.api.openapi", "parse_json"),
    ("validation (request model)", "app.web.api.openapi", "validate"),
    ("forecast core", "app.forecasting.forecaster:Forecaster", "predict_rows"),
    ("forecast core", "app.forecasting.forecaster:Forecaster", "forecast"),
    ("prediction log write", "app.serving.predictions", "log_predictions"),
    ("serialisation (answer dicts, response model)", "app.serving.predictions", "prediction_dict"),
    ("serialisation (answer dicts, response model)", "app.web.api.openapi", "serialise"),
]
DISPATCH = "Flask dispatch (request id, metrics, headers)"
SERVER = "gunicorn, HTTP and threads"


def _owner(path: str) -> Any:
    import importlib

    module, _, cls = path.partition(":")
    owner = importlib.import_module(module)
    return getattr(owner, cls) if cls else owner


@contextmanager
def _timed(spent: dict[str, float]) -> Iterator[None]:
    """Every phase function wrapped so that its time adds to `spent[phase]`; unwrapped afterwards."""
    originals: list[tuple[Any, str, Callable[..., Any]]] = []

    def wrap(phase: str, function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                spent[phase] = spent.get(phase, 0.0) + time.perf_counter() - started

        return timed

    try:
        for phase, path, name in PHASE_FUNCTIONS:
            owner = _owner(path)
            function = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
            originals.append((owner, name, function))
            setattr(owner, name, wrap(phase, function))
        yield
    finally:
        for owner, name, function in reversed(originals):
            setattr(owner, name, function)


def request_phases(
    env: dict[str, str], requests: dict[str, tuple[str, bytes]], n: int, http_ms: dict[str, float]
) -> dict[str, dict[str, Any]]:
    """Median milliseconds per phase of each request (name: (path, JSON body)), in-process on the
    service's database and models (`env`, the workers' environment), with the HTTP overhead taken from
    `http_ms` (the same request's median over HTTP, name: ms)."""
    import os

    os.environ["STORECAST_INSTANCE"] = env["STORECAST_INSTANCE"]  # the service's instance config
    from app.factory import create_app

    app = create_app({name: env[name] for name in ("SECRET_KEY", "DATABASE_URL", "MODELS_DIR")})
    client = app.test_client()
    out: dict[str, dict[str, Any]] = {}
    try:
        for key, (path, body) in requests.items():
            for _ in range(5):  # warm-up: the model loaded, the pool open
                client.post(path, data=body, content_type="application/json")
            samples: list[dict[str, float]] = []
            spent: dict[str, float] = {}
            with _timed(spent):
                for _ in range(n):
                    spent.clear()
                    started = time.perf_counter()
                    response = client.post(path, data=body, content_type="application/json")
                    total = time.perf_counter() - started
                    if response.status_code != 200:
                        raise RuntimeError(f"{path} answered {response.status_code}: {response.get_data()!r}")
                    sample = dict(spent)
                    sample[DISPATCH] = total - sum(spent.values())
                    sample["in-process total"] = total
                    samples.append(sample)
            names = list(dict.fromkeys(phase for phase, _, _ in PHASE_FUNCTIONS)) + [DISPATCH]
            medians = {
                name: statistics.median(s.get(name, 0.0) for s in samples) * 1000
                for name in (*names, "in-process total")
            }
            medians[SERVER] = max(0.0, http_ms[key] - medians["in-process total"])
            out[key] = {"n": n, "http_median_ms": http_ms[key], "phases_ms": medians}
    finally:
        app.extensions["request_log"].close()  # now, while the benchmark's database still exists
        app.extensions["storage"].dispose()
    return out
