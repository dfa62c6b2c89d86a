#!/usr/bin/env bash
# Exit 1, saying which address is taken and how to choose another, when gunicorn could not bind
# GUNICORN_BIND (default 127.0.0.1:$PORT, PORT 8000). Needs only python3.
set -euo pipefail
bind=${GUNICORN_BIND:-127.0.0.1:${PORT:-8000}}
python3 - "$bind" "${GUNICORN_BIND:+GUNICORN_BIND}" <<'PY'
import socket
import sys

bind, variable = sys.argv[1], sys.argv[2] or "PORT"
host, _, port = bind.rpartition(":")
host = host.strip("[]") or "0.0.0.0"
if not port.isdigit():
    sys.exit(f"==> cannot serve on {bind!r}: expected host:port")
family = socket.AF_INET6 if ":" in host else socket.AF_INET
with socket.socket(family, socket.SOCK_STREAM) as probe:
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn does: TIME_WAIT is no clash
    try:
        probe.bind((host, int(port)))
    except OSError as error:
        other = int(port) + 1
        example = f"PORT={other}" if variable == "PORT" else f"GUNICORN_BIND={host}:{other}"
        sys.exit(
            f"==> port {port} on {host} is already in use ({error.strerror}): another server is "
            f"listening there.\n==> Stop it, or choose another port: {example} make run"
        )
PY
