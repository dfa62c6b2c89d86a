#!/usr/bin/env bash
# The instance configuration's secrets, written once: a random SECRET_KEY and an admin token
# (STORECAST_ADMIN_TOKEN), each unless the environment or the file already has one. Writes (actual sales)
# and admin actions need the token, so a fresh deployment is never open; where to read it is said once,
# when it is written. The file is readable by its owner only.
# Usage: scripts/instance_config.sh   (STORECAST_INSTANCE: the instance folder, ./instance by default)
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=.venv/bin/python
[ -x "$PYTHON" ] || PYTHON=python3
instance=${STORECAST_INSTANCE:-instance}
config="$instance/config.py"
mkdir -p "$instance"
umask 077

has() { grep -qsE "^$1[[:space:]]*=" "$config"; }
append() {
  if [ -s "$config" ] && [ -n "$(tail -c1 "$config")" ]; then echo >> "$config"; fi
  "$PYTHON" -c "import secrets, sys; print(f'{sys.argv[1]} = {secrets.$2(32)!r}')" "$1" >> "$config"
  chmod 600 "$config"
}

if [ -z "${SECRET_KEY:-}" ] && ! has SECRET_KEY; then
  echo "==> writing a random SECRET_KEY to $config"
  append SECRET_KEY token_hex
fi
if [ -z "${STORECAST_ADMIN_TOKEN:-}" ] && ! has STORECAST_ADMIN_TOKEN; then
  append STORECAST_ADMIN_TOKEN token_urlsafe
  echo "==> wrote an admin token to $config: read STORECAST_ADMIN_TOKEN there (importing actual sales"
  echo "    and admin actions need it; this is the only time it is mentioned)"
fi
