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
.venv/bin/pytest "$@"
