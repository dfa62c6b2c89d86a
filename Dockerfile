# syntax=docker/dockerfile:1
# Storecast image: gunicorn serving the Flask app as a non-root user.
#   docker build -t storecast .
# The base image is pinned by tag; pin it by digest for a release:
#   docker build --build-arg PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:<digest> -t storecast .
# No data and no model are baked in: instance/ (SQLite database, config) and models/ (artifacts) are
# volumes; train the first model with `docker compose run --rm web flask --app wsgi train`.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- builder: Python packages in a virtualenv, front-end assets from npm ----
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends nodejs npm \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
RUN python -m venv /opt/venv
COPY requirements.txt ./
# Serving needs none of pip, setuptools or the packages' own test suites (no module outside a tests
# directory imports one): they stay in this stage.
RUN /opt/venv/bin/pip install -r requirements.txt \
    && /opt/venv/bin/python -m pip uninstall -y -q pip setuptools \
    && find /opt/venv/lib -depth -type d -name tests \
         \( -path '*/site-packages/numpy/*' -o -path '*/site-packages/pandas/*' \
            -o -path '*/site-packages/scipy/*' -o -path '*/site-packages/sklearn/*' \) \
         -exec rm -rf {} +
# The front-end runtime (htmx, pinned in package.json / package-lock.json) into static/vendor/.
COPY package.json package-lock.json ./
COPY scripts/setup_assets.sh scripts/setup_assets.sh
RUN mkdir -p static && PYTHON=/opt/venv/bin/python scripts/setup_assets.sh --runtime

# ---- runtime: the virtualenv, the code and the assets; no compiler, no node ----
FROM ${PYTHON_IMAGE} AS runtime
# gunicorn binds 0.0.0.0:8000 so that the proxy container reaches it; docker-compose.yml publishes only
# the proxy's port. Run the image alone only behind a proxy that buffers requests (README, "Slow clients").
# Scratch (gunicorn's control socket, the metrics of the workers) goes to /tmp, a tmpfs in compose: the
# home /app is read-only for the user, and only the two volumes hold anything that lasts.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    STORECAST_INSTANCE=/app/instance \
    MODELS_DIR=/app/models \
    GUNICORN_BIND=0.0.0.0:8000 \
    PORT=8000 \
    XDG_RUNTIME_DIR=/tmp
RUN groupadd --system --gid 10001 storecast \
    && useradd --system --uid 10001 --gid storecast --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin storecast
WORKDIR /app
COPY --from=builder /opt/venv /opt/venv
COPY app/ app/
COPY migrations/ migrations/
COPY templates/ templates/
COPY static/ static/
COPY --from=builder /src/static/vendor/ static/vendor/
COPY wsgi.py gunicorn.conf.py pyproject.toml requirements.txt ./
RUN mkdir -p /app/instance /app/models \
    && chown storecast:storecast /app/instance /app/models
VOLUME ["/app/instance", "/app/models"]
USER storecast:storecast
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/api/v1/health', timeout=4).status != 200)"]
# gunicorn is the entry point; `docker run IMAGE flask --app wsgi ...` runs a command instead.
CMD ["gunicorn", "--config", "gunicorn.conf.py", "wsgi:app"]
