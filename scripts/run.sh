#!/usr/bin/env bash
# Set up, train a model of the data configured unless production is one, then serve (scripts/serve.sh):
# gunicorn in front, the scheduler beside it. A busy port is reported before anything else happens.
# Data: the synthetic default, or the Kaggle CSVs in $STORECAST_DATA.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/check_port.sh  # fail before minutes of setup and training, not after
scripts/setup.sh

flask() { .venv/bin/flask --app wsgi "$@"; }
# One dataset per deployment: the first run records the data ($STORECAST_DATA, else the synthetic default);
# `models check-data` exits 3 when there is no production model yet (train one), and 4, naming the
# recorded data and `flask models switch-data`, when the data given is another: nothing is trained.
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

exec scripts/serve.sh
