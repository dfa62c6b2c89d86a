#!/usr/bin/env bash
# Fill the git-ignored static/vendor/ with the front-end runtime, from the package registries:
#   htmx (npm, pinned in package.json) -> static/vendor/htmx.min.js
#   axe-core (npm dev dependency) -> static/vendor/axe.min.js: the accessibility checker the browser
#   tests inject into pages; no page refers to it.
# Charts are rendered to SVG on the server (vl-convert), so no chart runtime is needed in the browser.
# Idempotent and fast when already done; FORCE=1 reinstalls. --runtime (the image) leaves the test-only
# axe-core out.
set -euo pipefail
RUNTIME=0
[[ "${1:-}" == "--runtime" ]] && RUNTIME=1
cd "$(dirname "$0")/.."
VENDOR=static/vendor
mkdir -p "$VENDOR"

HTMX_VERSION="$(sed -n 's/.*"htmx.org": *"\([^"]*\)".*/\1/p' package.json)"
AXE_VERSION="$(sed -n 's/.*"axe-core": *"\([^"]*\)".*/\1/p' package.json)"
WANTED="htmx $HTMX_VERSION, axe-core $AXE_VERSION"
OMIT=()
if [[ $RUNTIME == 1 ]]; then WANTED="htmx $HTMX_VERSION"; OMIT=(--omit=dev); fi
if [[ "${FORCE:-0}" == 1 || ! -s "$VENDOR/htmx.min.js" || ( $RUNTIME == 0 && ! -s "$VENDOR/axe.min.js" ) || "$(cat "$VENDOR/.versions" 2>/dev/null)" != "$WANTED" ]]; then
    echo "setup_assets: installing $WANTED from npm"
    if [[ -f package-lock.json ]]; then npm ci "${OMIT[@]}" --no-audit --no-fund --ignore-scripts --loglevel=error >/dev/null; else
        npm install "${OMIT[@]}" --no-audit --no-fund --ignore-scripts --loglevel=error >/dev/null; fi
    cp node_modules/htmx.org/dist/htmx.min.js "$VENDOR/htmx.min.js"
    if [[ $RUNTIME == 0 ]]; then cp node_modules/axe-core/axe.min.js "$VENDOR/axe.min.js"; fi
    echo "$WANTED" > "$VENDOR/.versions"
fi

echo "setup_assets: static/vendor ready ($WANTED)"
