"""gunicorn settings; each can be overridden from the environment."""

import os

bind = os.environ.get("GUNICORN_BIND", f"127.0.0.1:{os.environ.get('PORT', '8000')}")
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
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
    """Give each worker its own database connections.

    With preload_app the engine (and any connection the master opened while loading the app) is
    inherited through fork; two processes sharing one socket corrupt each other's conversations.
    dispose(close=False) forgets the inherited pool without closing the master's connections.
    """
    app = getattr(server.app, "callable", None)
    storage = getattr(app, "extensions", {}).get("storage")
    if storage is not None:
        storage.engine.dispose(close=False)
        server.log.debug("worker %s: inherited database pool disposed", worker.pid)
