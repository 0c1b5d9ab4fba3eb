# sklearn-serve: the service and its default model in one self-contained image.
#
#   docker build -t sklearn-serve .
#   docker run --rm -p 8000:8000 sklearn-serve
#
# Build arguments:
#   BASE_IMAGE  any image with python3 (3.11, the version the pins are tested with) and its venv
#               module: python:3.11-slim (default), or a local Debian bookworm base made by
#               scripts/docker-base.sh where images cannot be pulled.
#   WHEELS      a directory inside the build context holding wheels for requirements.txt, e.g.
#               build/wheels (`python3 -m pip wheel -r requirements.txt -w build/wheels`); pip then
#               installs from it alone (--no-index), for machines where pip cannot reach PyPI during
#               the build. Empty (default): pip installs from PyPI.
#
# Works with the classic builder and BuildKit alike (no BuildKit-only syntax), and with a base
# whose Python is /usr/local/bin/python3 (official images) or /usr/bin/python3 (Debian): only the
# name python3 is used.
ARG BASE_IMAGE=python:3.11-slim

# ---- builder: a virtualenv with the runtime dependencies, and the default model trained in it
FROM ${BASE_IMAGE} AS builder
ARG WHEELS=
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
WORKDIR /app
# Dependencies first, so this layer is rebuilt only when requirements.txt (or the wheels) change.
# With WHEELS empty it copies requirements.txt alone (a bare empty ${WHEELS} would mean the whole
# context); otherwise the wheel directory's contents too.
COPY requirements.txt ${WHEELS:-requirements.txt} /tmp/wheels/
RUN python3 -m venv /opt/venv \
 && if [ -n "${WHEELS}" ]; then \
        /opt/venv/bin/python3 -m pip install --no-index --find-links /tmp/wheels -r /tmp/wheels/requirements.txt; \
    else \
        /opt/venv/bin/python3 -m pip install -r /tmp/wheels/requirements.txt; \
    fi \
 && rm -rf /tmp/wheels
ENV PATH=/opt/venv/bin:$PATH
COPY app/ app/
COPY data/ data/
COPY train.py manage.py wsgi.py gunicorn.conf.py ./
# The default model, so the image serves without anything mounted (~45 s on 2 cores).
RUN python3 train.py --quiet \
 && python3 -c "import wsgi"

# ---- runtime: the virtualenv, the code and the model; no compilers, no pip cache, not root
FROM ${BASE_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MODELS_DIR=/app/models
# A fixed numeric id, so `runAsNonRoot` checks (Kubernetes) can verify it without /etc/passwd.
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin app
WORKDIR /app
COPY --from=builder /opt/venv /opt/venv
# The code stays root-owned, so the service cannot change it.
COPY --from=builder /app/app app/
COPY --from=builder /app/data data/
COPY --from=builder /app/train.py /app/manage.py /app/wsgi.py /app/gunicorn.conf.py ./
# The models are owned by the service's user, so `docker run ... python3 train.py` can add versions;
# mount a directory over /app/models (read-only is fine) to serve other models instead.
COPY --from=builder --chown=10001:10001 /app/models models/
USER 10001:10001
EXPOSE 8000
# Liveness through the real HTTP stack, on whatever PORT the server was given, read by the app's
# own configuration module (slim images have no curl). urlopen raises on a refused connection or a
# non-2xx answer, which exits 1: unhealthy.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python3", "-c", "import urllib.request; from app.config import load; urllib.request.urlopen('http://127.0.0.1:%s/health' % load()['PORT'], timeout=4)"]
# Exec form: gunicorn is PID 1 and gets `docker stop`'s SIGTERM itself, so it finishes the
# requests in flight and exits 0. HOST, PORT, WORKERS, ... come from the environment
# (gunicorn.conf.py). CMD rather than ENTRYPOINT, so `docker run IMAGE python3 train.py ...` works.
CMD ["gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]
