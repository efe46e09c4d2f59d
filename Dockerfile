# trio_kv in a container: `docker build -t trio-kv .` then
# `docker run --rm -e TRIO_KV_REQUIREPASS=<password> -p 9099:9099 -p 9100:9100 trio-kv`
# (any flag after the image name replaces the default CMD, e.g.
# `trio-kv --host 0.0.0.0 --workers 8`). Options can also come from TRIO_KV_*
# variables; unknown ones are rejected.
#
# The password comes from the environment (TRIO_KV_REQUIREPASS), never from
# the command line (`ps` would show it). Without one the server runs in
# protected mode: it listens on 0.0.0.0 but answers every client from outside
# the container -DENIED (HTTP: 403) and closes, so a published port is safe by
# default; `docker exec <container> redis-cli -p 9099` (loopback) still works.
# TRIO_KV_PROTECTED_MODE=no opts out (only on a network you trust).
# Tested with podman by scripts/container-test (README "Container").
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# redis-cli, so `docker exec <container> redis-cli -p 9099` works from inside:
# with no password, protected mode serves only loopback clients, which that is.
RUN apt-get update \
    && apt-get install -y --no-install-recommends redis-tools \
    && apt-get clean && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY . .
RUN pip install . \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin trio-kv \
    && mkdir /data && chown trio-kv /data

USER trio-kv
# The append-only log and snapshots: a volume the non-root user can write
# (the default ./trio-kv-data would be under the root-owned /src).
ENV TRIO_KV_DATA_DIR=/data
VOLUME ["/data"]
# The HTTP API, /metrics and the health checks: on in the image (off by
# default elsewhere); an environment variable, so it survives a replaced CMD.
ENV TRIO_KV_HTTP_PORT=9100
EXPOSE 9099 9100
# The server is PID 1 here (exec-form ENTRYPOINT): it installs its own
# SIGTERM/SIGINT handlers, drains connections and exits 0 (tested under a
# PID namespace in tests/integration/test_lifecycle.py, and as PID 1 of this
# image by scripts/container-test: podman stop -t 2 exits 0, busy clients too).
STOPSIGNAL SIGTERM
# Standard library only: GET /healthz on the HTTP port, expect 200.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('TRIO_KV_HTTP_PORT', '9100'); sys.exit(0 if urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=2).status == 200 else 1)"]

ENTRYPOINT ["trio-kv"]
CMD ["--host", "0.0.0.0"]
