#!/usr/bin/env bash
# Set up a checkout: virtualenv, Python packages, front-end assets, a secret key and an admin token,
# the database schema.
# Usage: scripts/setup.sh [--dev]   (--dev adds the test tools)
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
requirements=requirements.txt
[ "${1:-}" = "--dev" ] && requirements=requirements-dev.txt

if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$PYTHON" -m venv .venv
fi
stamp=".venv/.installed-$(cat requirements.txt "$requirements" | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "==> installing Python packages ($requirements)"
  .venv/bin/pip install --quiet --disable-pip-version-check -r "$requirements"
  touch "$stamp"
fi

echo "==> front-end assets"
scripts/setup_assets.sh

mkdir -p instance models
scripts/instance_config.sh  # a SECRET_KEY and an admin token, once

echo "==> database schema"
.venv/bin/flask --app wsgi db upgrade
