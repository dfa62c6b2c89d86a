#!/usr/bin/env bash
# Set up, train a first model when there is none, then serve: gunicorn in front, the scheduler beside it.
# Data: the synthetic default, or the Kaggle CSVs in $STORECAST_DATA.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

flask() { .venv/bin/flask --app wsgi "$@"; }
if ! flask models production >/dev/null 2>&1; then
  echo "==> no production model yet: training one on ${STORECAST_DATA:-the synthetic default}"
  flask train
fi

flask scheduler &
scheduler=$!
trap 'kill $scheduler 2>/dev/null || true' EXIT INT TERM
echo "==> serving on http://127.0.0.1:${PORT:-8000}"
.venv/bin/gunicorn -c gunicorn.conf.py wsgi:app
