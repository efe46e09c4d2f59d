# trio_kv in a container: `docker build -t trio-kv .` then
# `docker run --rm -p 9099:9099 trio-kv` (any flag after the image name
# replaces the default CMD, e.g. `trio-kv --host 0.0.0.0 --workers 8`).
# Options can also come from TRIO_KV_* variables; unknown ones are rejected.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY . .
RUN pip install . \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin trio-kv

USER trio-kv
EXPOSE 9099
# The server is PID 1 here (exec-form ENTRYPOINT): it installs its own
# SIGTERM/SIGINT handlers, drains connections and exits 0 (tested under a
# PID namespace in tests/integration/test_lifecycle.py).
STOPSIGNAL SIGTERM
# Standard library only: connect, send PING, expect PONG.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["python", "-c", "import os, socket, sys; s = socket.create_connection(('127.0.0.1', int(os.environ.get('TRIO_KV_PORT', '9099'))), timeout=2); s.sendall(b'PING\\n'); sys.exit(0 if s.recv(64).startswith(b'PONG') else 1)"]

ENTRYPOINT ["trio-kv"]
CMD ["--host", "0.0.0.0"]
