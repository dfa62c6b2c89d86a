"""gunicorn settings; each can be overridden from the environment."""

import os
import shutil
import tempfile

# One OpenMP/BLAS thread per worker: the workers are the parallelism. Several threads per worker on
# few cores make scikit-learn's tree ensembles spin and wait (measured: a 1-row prediction took ~250 ms
# on a busy 2-core machine; the load benchmark went from about 8 to 44 requests/s with one thread). Set
# before the app (and scikit-learn) is imported; an explicit value wins.
for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, os.environ.get("STORECAST_MODEL_THREADS", "1"))

# prometheus-client's multiprocess mode: every worker writes its counters to files in this directory and
# a scrape of any worker adds them up. Set before the app (and the client) is imported; emptied at start.
METRICS_DIR = os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="storecast-metrics-"))

bind = os.environ.get("GUNICORN_BIND", f"127.0.0.1:{os.environ.get('PORT', '8000')}")
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
# Threads, not sync workers: a connection that trickles its request holds one thread, not a whole
# worker, and app.gunicorn_worker bounds how long it may (GUNICORN_HEADER_TIMEOUT, GUNICORN_BODY_TIMEOUT).
# Two a worker: its threads share one GIL, so more of them only take turns at it, and under load a
# worker of 8 threads served fewer predictions a second, and less steadily (benchmarks/bench_http.py).
# Idle keep-alive connections wait in gunicorn's poller and hold no thread.
worker_class = "app.gunicorn_worker.DeadlineThreadWorker"
threads = int(os.environ.get("GUNICORN_THREADS", "2"))
# Request line and header limits: a hostile request is refused by gunicorn before the app sees it.
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "0"))
# Load the app once in the master, then fork: workers share the imported libraries' memory.
preload_app = os.environ.get("GUNICORN_PRELOAD", "true").lower() == "true"
accesslog = os.environ.get("GUNICORN_ACCESSLOG", "-")
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info")
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")


def post_fork(server, worker):
    """Give each worker its own database connections and its own first look at the registry.

    With preload_app the engine (and any connection the master opened while loading the app) is
    inherited through fork; two processes sharing one socket corrupt each other's conversations.
    dispose(close=False) forgets the inherited pool without closing the master's connections.
    """
    app = getattr(server.app, "callable", None)
    storage = getattr(app, "extensions", {}).get("storage")
    if storage is not None:
        storage.engine.dispose(close=False)
        server.log.debug("worker %s: inherited database pool disposed", worker.pid)
    # The model inherited from the master may be older than production (a worker restarted after a
    # promotion): the first request checks the registry instead of serving it for a refresh interval.
    holder = getattr(app, "extensions", {}).get("model_holder")
    if holder is not None:
        holder.mark_check_due()


def when_ready(server):
    """Load the production model once in the master, before the workers are forked.

    The workers inherit it (copy-on-write pages, so N workers do not hold N copies of the trees) and
    answer their first request without a cold start; each still follows the registry by itself.
    """
    app = getattr(server.app, "callable", None)
    holder = getattr(app, "extensions", {}).get("model_holder")
    if holder is None:
        return
    try:
        holder.refresh()
        server.log.info("model preloaded in the master: %s", getattr(holder, "version", None) or "none yet")
    except Exception:  # noqa: BLE001 - a worker retries on its first request; never block start-up
        server.log.exception("could not preload the production model")


def on_starting(server):
    """Forget the counters of a previous run: the directory may be a persistent, configured one."""
    for entry in os.scandir(METRICS_DIR):
        if entry.is_file():
            os.unlink(entry.path)
        else:
            shutil.rmtree(entry.path, ignore_errors=True)


def child_exit(server, worker):
    """A dead worker's gauges stop counting; its counters and histograms stay in the sums."""
    from prometheus_client import multiprocess  # imported by the master only when a worker exits

    multiprocess.mark_process_dead(worker.pid)
