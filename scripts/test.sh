#!/usr/bin/env bash
# Install what the tests need on a fresh machine, then run the whole suite (lint included).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --dev

if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ]; then
  echo "==> installing Debian's chromium for the browser tests"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

.venv/bin/ruff check .
.venv/bin/ruff format --check .
# Two legs: the suite on SQLite (with the real-data backtest when ../shared/data/walmart is there), and
# the same code on PostgreSQL: a throwaway server on 127.0.0.1:5433, deleted on exit. What never opens
# the test database (the forecasting core, deployment files, source checks, pure web helpers, and the
# tests that start a real gunicorn on a SQLite file of their own) runs only on SQLite. The legs run side
# by side (much of each waits on a database, a browser or a server), each in its own temp directory;
# the PostgreSQL leg's output follows the SQLite leg's. SKIP_POSTGRES=1 skips it (a developer's quick run).
pg_pid=""
if [ "${SKIP_POSTGRES:-0}" != 1 ]; then
  scripts/postgres.sh destroy
  trap 'scripts/postgres.sh destroy' EXIT
  scripts/postgres.sh start
  pg_log="$(mktemp -t storecast-pg-leg.XXXXXX)"
  # The forecasting core never opens the database, but its forecast-run engine writes runs: that one stays.
  core_ignores=()
  for test_file in tests/forecasting/test_*.py; do
    [ "$test_file" = tests/forecasting/test_engine.py ] || core_ignores+=(--ignore="$test_file")
  done
  STORECAST_TEST_DATABASE_URL="$(scripts/postgres.sh url)" .venv/bin/pytest -m "not browser" \
    -p no:cacheprovider --basetemp="$(mktemp -d -t storecast-pg-tmp.XXXXXX)" \
    "${core_ignores[@]}" --ignore=tests/benchmarks --ignore=tests/test_deploy_files.py \
    --ignore=tests/test_architecture.py --ignore=tests/test_limits.py --ignore=tests/test_run_scripts.py \
    --ignore=tests/test_gunicorn_worker.py --ignore=tests/web/test_metrics_workers.py \
    --ignore=tests/web/test_charts.py --ignore=tests/web/test_contrast.py --ignore=tests/web/test_schemas.py \
    "$@" >"$pg_log" 2>&1 &
  pg_pid=$!
fi

# The whole suite's longest test, the real-data backtest at three origins (minutes of training on one
# core, skipped without the files), runs as a third leg beside the other two rather than at the end of
# the SQLite leg; its output follows theirs.
export STORECAST_SLOW=${STORECAST_SLOW:-1}
backtest_id=tests/forecasting/test_backtest.py::test_real_data_backtest_meets_the_accuracy_target
backtest_pid=""
sqlite_args=("$@")
if [ $# -eq 0 ]; then
  backtest_log="$(mktemp -t storecast-backtest-leg.XXXXXX)"
  .venv/bin/pytest -p no:cacheprovider --basetemp="$(mktemp -d -t storecast-backtest-tmp.XXXXXX)" \
    "$backtest_id" >"$backtest_log" 2>&1 &
  backtest_pid=$!
  sqlite_args=(--deselect "$backtest_id")
fi

echo "==> the suite on SQLite"
sqlite_status=0
.venv/bin/pytest "${sqlite_args[@]}" || sqlite_status=$?

# Wait for a leg started in the background (pid, log, heading), print its output; its exit status.
finish_leg() {
  local status=0
  wait "$1" || status=$?
  echo "==> $3"
  cat "$2"
  rm -f "$2"
  return "$status"
}
pg_status=0
[ -z "$pg_pid" ] || finish_leg "$pg_pid" "$pg_log" "the suite on PostgreSQL" || pg_status=$?
backtest_status=0
[ -z "$backtest_pid" ] || finish_leg "$backtest_pid" "$backtest_log" "the real-data backtest at three origins" ||
  backtest_status=$?
exit $(( sqlite_status || pg_status || backtest_status ))
