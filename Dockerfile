# syntax=docker/dockerfile:1
# ctctsync with the `server` extra (web UI, REST API, scheduler, job workers), installed from
# this checkout at the versions constraints.txt pins (what CI tests).
#   docker build -t ctctsync .
#   docker run --env-file .env -p 8000:8000 -v ctctsync-data:/data ctctsync
# Run with PostgreSQL and separate workers: compose.yaml; docs/operations.md, "Containers".

# 3.11: the Python CI runs and constraints.txt was resolved for (pyproject's minimum).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
WORKDIR /src
# Only what the install reads (the rest of the context is excluded by .dockerignore).
COPY pyproject.toml constraints.txt README.md ./
COPY src ./src
# A regular (not editable) install: the venv holds the package, its templates, static files
# and migrations, so the runtime stage needs no source tree.
RUN /opt/venv/bin/pip install -c constraints.txt '.[server]'

FROM ${PYTHON_IMAGE}
# A fixed numeric uid/gid: `runAsNonRoot` in Kubernetes can verify it, and a bind-mounted
# data folder can be chowned to it (`chown 10001:10001 ./data`).
RUN groupadd --system --gid 10001 ctctsync \
    && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin ctctsync \
    && install -d -o 10001 -g 10001 -m 0700 /data
# Same base image, same /usr/local/bin/python: the venv's interpreter link stays valid.
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    CTCTSYNC_DATA_DIR=/data
# data_dir: the SQLite store (the default without CTCTSYNC_DATABASE_URL), the key files made
# when CTCTSYNC_SECRET_KEY / CTCTSYNC_ENCRYPTION_KEY are not set, the default DuckDB warehouse.
# A new named volume copies this folder's owner (10001) and mode (0700) from the image.
VOLUME ["/data"]
WORKDIR /data
USER 10001:10001
EXPOSE 8000
# Liveness only (/healthz never touches the store, so a database outage restarts nothing);
# urlopen raises on a refused connection or a non-2xx answer, i.e. exit 1. Python, not curl:
# the slim image has no curl. The port follows CTCTSYNC_PORT like `serve` does.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('CTCTSYNC_PORT', '8000') + '/healthz', timeout=4)"]
ENTRYPOINT ["ctctsync"]
# 0.0.0.0: a container's port is reached from outside it. `serve` refuses any address but
# localhost without an explicit CTCTSYNC_SECRET_KEY, so the container needs one (.env.example).
CMD ["serve", "--host", "0.0.0.0"]
