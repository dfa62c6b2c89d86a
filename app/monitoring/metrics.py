"""In-process Prometheus counters and a latency histogram, rendered in the text exposition format.

Counters live in the worker's memory (no client library needed): with several gunicorn workers each
scrape sees the worker that answered, and Prometheus' rate()/sum() over the `pid` label adds them up.
Figures that must be global (dataset drift, live WMAE) come from the database at scrape time.
"""

from __future__ import annotations

import os
import threading
from collections import defaultdict

# Request latency buckets in seconds (upper bounds), Prometheus' usual spread for web handlers.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels: object) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{key}="{_escape(str(value))}"' for key, value in labels.items()) + "}"


def _number(value: float) -> str:
    if value != value:  # NaN
        return "NaN"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


class MetricsRegistry:
    """Thread-safe counters for requests, latency and predictions of this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, str], int] = defaultdict(int)
        self.latency_buckets: dict[tuple[str, str], list[int]] = {}
        self.latency_sum: dict[tuple[str, str], float] = defaultdict(float)
        self.latency_count: dict[tuple[str, str], int] = defaultdict(int)
        self.predictions: dict[str, int] = defaultdict(int)

    def observe_request(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        key = (endpoint, method)
        with self._lock:
            self.requests[(endpoint, method, str(status))] += 1
            buckets = self.latency_buckets.get(key)
            if buckets is None:
                buckets = self.latency_buckets[key] = [0] * len(LATENCY_BUCKETS)
            for i, bound in enumerate(LATENCY_BUCKETS):
                if seconds <= bound:
                    buckets[i] += 1
            self.latency_sum[key] += seconds
            self.latency_count[key] += 1

    def predictions_served(self, source: str, count: int) -> None:
        with self._lock:
            self.predictions[source] += count

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.latency_buckets.clear()
            self.latency_sum.clear()
            self.latency_count.clear()
            self.predictions.clear()

    def render(self, gauges: list[tuple[str, str, dict[str, object], float | None]] | None = None) -> str:
        """The exposition text: this process' counters, then the given (name, help, labels, value) gauges."""
        pid = os.getpid()
        lines: list[str] = []
        with self._lock:
            lines += [
                "# HELP storecast_http_requests_total HTTP requests handled, by endpoint, method and status.",
                "# TYPE storecast_http_requests_total counter",
            ]
            for (endpoint, method, status), count in sorted(self.requests.items()):
                labels = _labels(endpoint=endpoint, method=method, status=status, pid=pid)
                lines.append(f"storecast_http_requests_total{labels} {count}")
            lines += [
                "# HELP storecast_http_request_duration_seconds Request latency, by endpoint and method.",
                "# TYPE storecast_http_request_duration_seconds histogram",
            ]
            for (endpoint, method), buckets in sorted(self.latency_buckets.items()):
                for bound, count in zip(LATENCY_BUCKETS, buckets, strict=True):
                    labels = _labels(endpoint=endpoint, method=method, pid=pid, le=_number(bound))
                    lines.append(f"storecast_http_request_duration_seconds_bucket{labels} {count}")
                total = self.latency_count[(endpoint, method)]
                labels = _labels(endpoint=endpoint, method=method, pid=pid, le="+Inf")
                lines.append(f"storecast_http_request_duration_seconds_bucket{labels} {total}")
                labels = _labels(endpoint=endpoint, method=method, pid=pid)
                lines.append(
                    f"storecast_http_request_duration_seconds_sum{labels} "
                    f"{_number(self.latency_sum[(endpoint, method)])}"
                )
                lines.append(f"storecast_http_request_duration_seconds_count{labels} {total}")
            lines += [
                "# HELP storecast_predictions_served_total Predictions served and logged, by source.",
                "# TYPE storecast_predictions_served_total counter",
            ]
            for source, count in sorted(self.predictions.items()):
                lines.append(f"storecast_predictions_served_total{_labels(source=source, pid=pid)} {count}")
        families: dict[str, list[tuple[str, dict[str, object], float | None]]] = {}
        for name, help_text, labels, value in gauges or []:  # one HELP and TYPE per name, samples together
            families.setdefault(name, []).append((help_text, labels, value))
        for name, samples in families.items():
            lines.append(f"# HELP {name} {samples[0][0]}")
            lines.append(f"# TYPE {name} gauge")
            for _, labels, value in samples:
                lines.append(f"{name}{_labels(**labels)} {_number(float('nan') if value is None else value)}")
        return "\n".join(lines) + "\n"


REGISTRY = MetricsRegistry()
