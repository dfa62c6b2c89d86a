#!/usr/bin/env bash
# Fill the git-ignored static/vendor/ with the front-end runtime, from the package registries:
#   htmx (npm, pinned in package.json) -> static/vendor/htmx.min.js
# Charts are rendered to SVG on the server (vl-convert), so no chart runtime is needed in the browser.
# Idempotent and fast when already done; FORCE=1 reinstalls.
set -euo pipefail
cd "$(dirname "$0")/.."
VENDOR=static/vendor
mkdir -p "$VENDOR"

HTMX_VERSION="$(sed -n 's/.*"htmx.org": *"\([^"]*\)".*/\1/p' package.json)"
if [[ "${FORCE:-0}" == 1 || ! -s "$VENDOR/htmx.min.js" || "$(cat "$VENDOR/.htmx-version" 2>/dev/null)" != "$HTMX_VERSION" ]]; then
    echo "setup_assets: installing htmx.org@$HTMX_VERSION from npm"
    if [[ -f package-lock.json ]]; then npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >/dev/null; else
        npm install --no-audit --no-fund --ignore-scripts --loglevel=error >/dev/null; fi
    cp node_modules/htmx.org/dist/htmx.min.js "$VENDOR/htmx.min.js"
    echo "$HTMX_VERSION" > "$VENDOR/.htmx-version"
fi

echo "setup_assets: static/vendor ready (htmx $HTMX_VERSION)"
