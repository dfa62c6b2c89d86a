#!/usr/bin/env bash
# Serve: the scheduler beside gunicorn, both stopped together. Refuses a busy port before anything starts,
# and never leaves the scheduler behind when gunicorn stops or fails.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/check_port.sh
.venv/bin/flask --app wsgi scheduler &  # the process itself, not a subshell: $! is what to stop
scheduler=$!
echo "==> scheduler started (pid $scheduler)"
trap 'kill "$scheduler" 2>/dev/null || true; wait "$scheduler" 2>/dev/null || true' EXIT
trap 'exit 130' INT TERM
echo "==> serving on http://${GUNICORN_BIND:-127.0.0.1:${PORT:-8000}}"
.venv/bin/gunicorn -c gunicorn.conf.py wsgi:app
