#!/usr/bin/env bash
# Set up, train a model of the data configured unless production is one, then serve: gunicorn in
# front, the scheduler beside it.
# Data: the synthetic default, or the Kaggle CSVs in $STORECAST_DATA.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

flask() { .venv/bin/flask --app wsgi "$@"; }
# One dataset, no mixing: a production model of other data than $STORECAST_DATA is replaced (and archived)
# by a model of the data named; `models check-data` exits 3 when there is none of this data.
status=0
message=$(flask models check-data) || status=$?
echo "==> $message"
case $status in
  0) ;;
  3)
    echo "==> training a model on ${STORECAST_DATA:-the synthetic default}; it becomes production"
    flask train
    ;;
  *) exit "$status" ;;
esac

flask scheduler &
scheduler=$!
trap 'kill $scheduler 2>/dev/null || true' EXIT INT TERM
echo "==> serving on http://127.0.0.1:${PORT:-8000}"
.venv/bin/gunicorn -c gunicorn.conf.py wsgi:app
