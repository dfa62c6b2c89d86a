#!/usr/bin/env bash
# Build the Storecast image (storecast:latest, the name docker-compose.yml runs).
#
# With a working docker daemon: `docker build`, the base pulled from the registry. Otherwise podman
# (runc, cgroupfs, host network: what works on a machine without a daemon or a public registry), in
# docker format so that the HEALTHCHECK survives (the OCI format drops it). When the Python base
# cannot be pulled, one is made from Debian's packages with debootstrap and kept in podman's store
# under the name the Dockerfile's PYTHON_IMAGE expects, so a second build reuses it. With podman the
# proxy and PostgreSQL images compose's check runs are built too, from Debian's nginx and postgresql
# packages on the same base (deploy/images/).
#
#   scripts/image.sh                      # engine picked as above
#   CONTAINER_ENGINE=podman scripts/image.sh
#   scripts/image.sh --no-cache           # arguments go to every build
set -euo pipefail
cd "$(dirname "$0")/.."

image=storecast:latest
python_image=python:3.11-slim-bookworm
local_base=localhost/$python_image
proxy_image=localhost/storecast-proxy:bookworm
postgres_image=localhost/storecast-postgres:15-bookworm

engine=${CONTAINER_ENGINE:-}
if [ -z "$engine" ]; then
  if command -v docker >/dev/null && docker info >/dev/null 2>&1; then engine=docker; else engine=podman; fi
fi

if [ "$engine" = docker ]; then
  echo "==> docker build -t $image"
  exec docker build "$@" -t "$image" .
fi

command -v podman >/dev/null || { echo "neither a working docker nor podman (apt-get install podman runc)" >&2; exit 1; }
# crun refuses hybrid cgroup hierarchies; runc runs on them. Limits stay low: no CAP_SYS_RESOURCE.
podman=(podman)
command -v runc >/dev/null && podman+=(--runtime runc)
podman+=(--cgroup-manager=cgroupfs)
limits=(--network=host --ulimit nofile=1024:1024 --ulimit nproc=1024:1024)
# pip and npm reach their registries through this machine's CA bundle: lend it to the RUN steps.
certs=()
[ -d /etc/ssl/certs ] && certs=(-v /etc/ssl/certs:/etc/ssl/certs:ro)

# The base: one already here, else the registry's, else one made from Debian's packages.
base=""
for candidate in "docker.io/library/$python_image" "$local_base"; do
  if "${podman[@]}" image exists "$candidate"; then base=$candidate; break; fi
done
if [ -z "$base" ] && "${podman[@]}" pull -q "docker.io/library/$python_image" >/dev/null 2>&1; then
  base=docker.io/library/$python_image
fi
if [ -z "$base" ]; then
  command -v debootstrap >/dev/null || { echo "no base image and no debootstrap (apt-get install debootstrap)" >&2; exit 1; }
  mirror=$(grep -rhs '^URIs:' /etc/apt/sources.list.d/ | awk '{print $2}' | grep -m1 'debian$' || true)
  mirror=${mirror:-http://deb.debian.org/debian}
  root=$(mktemp -d -t storecast-base.XXXXXX)
  trap 'rm -rf "$root"' EXIT
  echo "==> $python_image from Debian's packages ($mirror), kept as $local_base"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$root" "$mirror" \
    >"$root.log" 2>&1 || { tail -20 "$root.log" >&2; exit 1; }
  rm -f "$root.log"
  ln -sf python3 "$root/usr/bin/python"
  # As Debian's slim images: no manuals, documentation or translations, now or from later installs.
  printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
    'path-exclude /usr/share/man/*' 'path-exclude /usr/share/info/*' 'path-exclude /usr/share/locale/*' \
    'path-exclude /usr/share/lintian/*' >"$root/etc/dpkg/dpkg.cfg.d/slim"
  find "$root/usr/share/doc" -type f ! -name copyright -delete
  rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/* \
    "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -c . | "${podman[@]}" import -q - "$local_base" >/dev/null
  rm -rf "$root"
  trap - EXIT
  base=$local_base
fi

echo "==> $image on $base"
"${podman[@]}" build "${limits[@]}" --format docker "${certs[@]}" \
  --build-arg "PYTHON_IMAGE=$base" "$@" -t "$image" .
echo "==> $proxy_image and $postgres_image (Debian's nginx and PostgreSQL 15)"
"${podman[@]}" build "${limits[@]}" --format docker --build-arg "BASE_IMAGE=$base" \
  "$@" -f deploy/images/proxy.Dockerfile -t "$proxy_image" deploy/images
"${podman[@]}" build "${limits[@]}" --format docker --build-arg "BASE_IMAGE=$base" \
  "$@" -f deploy/images/postgres.Dockerfile -t "$postgres_image" deploy/images
"${podman[@]}" image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' \
  | grep -E "^(localhost/storecast|localhost/storecast-proxy|localhost/storecast-postgres):" || true
