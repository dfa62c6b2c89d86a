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
echo "==> the suite on SQLite (with the real-data backtest when ../shared/data/walmart is there)"
STORECAST_SLOW=${STORECAST_SLOW:-1} .venv/bin/pytest "$@"

# The same code on PostgreSQL: a throwaway server on 127.0.0.1:5433, deleted on exit. The packages
# that never open a database (the forecasting core, the deployment files) ran above and are not
# repeated. SKIP_POSTGRES=1 skips this leg (a developer's quick run); CI runs it.
if [ "${SKIP_POSTGRES:-0}" != 1 ]; then
  echo "==> the suite again on PostgreSQL"
  scripts/postgres.sh destroy
  trap 'scripts/postgres.sh destroy' EXIT
  scripts/postgres.sh start
  STORECAST_TEST_DATABASE_URL="$(scripts/postgres.sh url)" .venv/bin/pytest -m "not browser" \
    --ignore=tests/forecasting --ignore=tests/test_deploy_files.py "$@"
fi
