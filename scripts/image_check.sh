#!/usr/bin/env bash
# Smoke test of the images scripts/image.sh built, with podman, against real processes on loopback:
#   1. the image alone: migrate, train on the embedded default, gunicorn; /ready and one /predict
#      answered, the image's HEALTHCHECK reported healthy, every process uid 10001, and nothing written
#      in any container's own filesystem (podman diff): only the two volumes and the /tmp tmpfs.
#   2. docker-compose.yml on PostgreSQL through podman-compose (Debian's): migrate, a first model, two
#      web containers behind the proxy; both answer through the proxy, and one /predict through the
#      proxy leaves exactly one prediction_log row.
# Published ports are on 127.0.0.1 only. Everything it starts (containers, pods, volumes, networks)
# carries this run's prefix and is removed on exit, failed or not.
set -euo pipefail
cd "$(dirname "$0")/.."

image=storecast:latest
proxy_image=localhost/storecast-proxy:bookworm
postgres_image=localhost/storecast-postgres:15-bookworm
podman_global=()
command -v runc >/dev/null && podman_global+=(--runtime runc)
podman_global+=(--cgroup-manager=cgroupfs)
# podman without systemd cannot time health checks (they are run here by hand): drop its complaint.
pm() { podman "${podman_global[@]}" "$@" 2> >(grep -v 'unable to get systemd connection' >&2); }
podman=(pm)
podman_bin=(podman "${podman_global[@]}")  # for xargs, which runs no shell function
limits=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024)
prefix=storecast-check-$$
project=storecastcheck$$
work=$(mktemp -d -t storecast-image-check.XXXXXX)

say() { echo "==> $*"; }
fail() {
  echo "image check FAILED: $*" >&2
  exit 1
}

# Remove what this run started: its containers, pods, volumes and networks, all named after it.
cleanup() {
  local status=$?
  set +e
  if [ "$status" != 0 ]; then
    for name in $("${podman[@]}" ps -a --format '{{.Names}}' | grep -E "^($prefix|${project}_)"); do
      echo "--- logs of $name (last 30 lines)" >&2
      "${podman[@]}" logs --tail 30 "$name" >&2 2>&1
    done
  fi
  "${podman[@]}" ps -a --format '{{.Names}}' | grep -E "^($prefix|${project}_)" |
    xargs -r "${podman_bin[@]}" rm -f -v -t 2 >/dev/null 2>&1
  "${podman[@]}" pod ls --format '{{.Name}}' | grep -E "^($prefix|$project)" |
    xargs -r "${podman_bin[@]}" pod rm -f >/dev/null 2>&1
  "${podman[@]}" volume ls --format '{{.Name}}' | grep -E "^($prefix|${project}_)" |
    xargs -r "${podman_bin[@]}" volume rm -f >/dev/null 2>&1
  "${podman[@]}" network ls --format '{{.Name}}' | grep -E "^($prefix|${project}_)" |
    xargs -r "${podman_bin[@]}" network rm -f >/dev/null 2>&1
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for needed in "$image" "$proxy_image" "$postgres_image"; do
  "${podman[@]}" image exists "$needed" || fail "no image $needed in podman's store: run make image first"
done
command -v podman-compose >/dev/null || fail "podman-compose is missing (apt-get install podman-compose)"

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
random_hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }

# GET until it answers 200, at most $2 seconds.
wait_for() {
  local deadline=$((SECONDS + $2))
  until curl -sf -o /dev/null -m 5 "$1"; do
    [ "$SECONDS" -lt "$deadline" ] || fail "$1 did not answer 200 within $2 s"
    sleep 1
  done
}

# Run the container's HEALTHCHECK until it passes, at most $2 seconds; then its status must say so.
wait_healthy() {
  local deadline=$((SECONDS + $2))
  until "${podman[@]}" healthcheck run "$1" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || fail "$1: health check not passing within $2 s"
    sleep 2
  done
  local status
  status=$("${podman[@]}" inspect --format '{{.State.Health.Status}}' "$1" 2>/dev/null ||
    "${podman[@]}" inspect --format '{{.State.Healthcheck.Status}}' "$1")
  [ "$status" = healthy ] || fail "$1: health status $status"
}

# Nothing written in the container's own filesystem (the volumes and the /tmp tmpfs are not in it)
# beyond what podman itself changes in a container that runs nothing with the same options ($2...).
assert_no_writes() {
  local name=$1 changes baseline
  shift
  "${podman[@]}" run --name "$prefix-baseline" "$@" "$image" true >/dev/null
  baseline=$("${podman[@]}" diff "$prefix-baseline" | sort)
  "${podman[@]}" rm -v "$prefix-baseline" >/dev/null
  changes=$("${podman[@]}" diff "$name" | sort | comm -23 - <(echo "$baseline"))
  [ -z "$changes" ] || fail "$name wrote outside its volumes: $(echo "$changes" | head -20 | tr '\n' ' ')"
}

predict_body='{"store": 1, "dept": 2, "date": "2012-11-02"}'
secret=$(random_hex 32)
token=$(random_hex 16)

# ---- 1. the image alone ----
port=$(free_port)
app=("${limits[@]}" --health-interval=disable -e "SECRET_KEY=$secret" -e "STORECAST_ADMIN_TOKEN=$token"
  --tmpfs /tmp -v "$prefix-instance:/app/instance" -v "$prefix-models:/app/models")
say "the image alone: migrate"
"${podman[@]}" run --name "$prefix-migrate" --network none "${app[@]}" "$image" flask --app wsgi db upgrade
assert_no_writes "$prefix-migrate" --network none "${app[@]}"
say "train on the embedded default"
"${podman[@]}" run --name "$prefix-train" --network none "${app[@]}" "$image" flask --app wsgi train
assert_no_writes "$prefix-train" --network none "${app[@]}"
"${podman[@]}" rm -v "$prefix-migrate" "$prefix-train" >/dev/null
say "serve on 127.0.0.1:$port"
"${podman[@]}" run -d --name "$prefix-web" -p "127.0.0.1:$port:8000" "${app[@]}" "$image" >/dev/null
wait_for "http://127.0.0.1:$port/api/v1/ready" 120
answer=$(curl -sf -m 30 -X POST "http://127.0.0.1:$port/api/v1/predict" \
  -H 'Content-Type: application/json' -d "$predict_body") || fail "/predict did not answer 200"
grep -q '"prediction"' <<<"$answer" || fail "/predict answered without a prediction: $answer"
wait_healthy "$prefix-web" 60
users=$("${podman[@]}" top "$prefix-web" huser user | tail -n +2 | awk '{print $1, $2}' | sort -u)
[ "$users" = "10001 storecast" ] || fail "processes not all uid 10001 (storecast): $users"
assert_no_writes "$prefix-web" "${app[@]}"
say "image alone: ready, /predict answered, healthy, uid 10001, nothing written outside the volumes"
"${podman[@]}" stop -t 30 "$prefix-web" >/dev/null
"${podman[@]}" rm -v "$prefix-web" >/dev/null

# ---- 2. docker-compose.yml: PostgreSQL, two web containers behind the proxy ----
proxy_port=$(free_port)
pg_password=$(random_hex 16)
cat >"$work/check.yml" <<'EOF'
services:
  web:
    deploy:
      replicas: 2
EOF
export SECRET_KEY=$secret STORECAST_ADMIN_TOKEN=$token POSTGRES_PASSWORD=$pg_password
export DATABASE_URL="postgresql+psycopg://storecast:$pg_password@postgres:5432/storecast"
export STORECAST_HTTP_PORT="127.0.0.1:$proxy_port"
export STORECAST_PROXY_IMAGE=$proxy_image STORECAST_POSTGRES_IMAGE=$postgres_image
compose=(podman-compose -p "$project" -f docker-compose.yml -f "$work/check.yml"
  --podman-args "${podman_global[*]}" --podman-run-args "${limits[*]}")
up() { "${compose[@]}" up -d --no-build --no-deps "$@" >>"$work/compose.log" 2>&1 || {
  cat "$work/compose.log" >&2
  fail "podman-compose up $*"
}; }

say "compose: postgres"
up postgres
wait_healthy "${project}_postgres_1" 90
say "compose: migrate"
up migrate
[ "$("${podman[@]}" wait "${project}_migrate_1")" = 0 ] || fail "compose's migrate failed"
say "compose: a first model (naive: the wiring is checked here, not the model)"
"${compose[@]}" run -T --rm --no-deps web flask --app wsgi train --model naive >>"$work/compose.log" 2>&1 ||
  { cat "$work/compose.log" >&2; fail "training through compose failed"; }
say "compose: two web containers, then the proxy on 127.0.0.1:$proxy_port"
up web
wait_healthy "${project}_web_1" 120
wait_healthy "${project}_web_2" 60
up proxy
wait_for "http://127.0.0.1:$proxy_port/api/v1/ready" 60
wait_healthy "${project}_proxy_1" 30
for _ in 1 2 3 4 5 6; do
  curl -sf -o /dev/null -m 10 "http://127.0.0.1:$proxy_port/api/v1/ready" || fail "/ready through the proxy"
done
for web in "${project}_web_1" "${project}_web_2"; do
  "${podman[@]}" logs "$web" 2>&1 | grep -q 'GET /api/v1/ready' || fail "$web answered nothing through the proxy"
done
request_id="image-check-$(random_hex 8)"
answer=$(curl -sf -m 30 -X POST "http://127.0.0.1:$proxy_port/api/v1/predict" -H "X-Request-ID: $request_id" \
  -H 'Content-Type: application/json' -d "$predict_body") || fail "/predict through the proxy"
grep -q '"prediction"' <<<"$answer" || fail "/predict through the proxy answered without a prediction: $answer"
logged=0
for _ in $(seq 1 20); do
  logged=$("${podman[@]}" exec "${project}_postgres_1" psql -U storecast -d storecast -tAc \
    "SELECT count(*) FROM prediction_log WHERE request_id = '$request_id'")
  [ "$logged" = 0 ] || break
  sleep 0.5
done
sleep 1
logged=$("${podman[@]}" exec "${project}_postgres_1" psql -U storecast -d storecast -tAc \
  "SELECT count(*) FROM prediction_log WHERE request_id = '$request_id'")
[ "$logged" = 1 ] || fail "one /predict through the proxy left $logged prediction_log rows"
say "compose: both web containers answer through the proxy; one /predict, one prediction_log row"
say "image check passed"
