# A replica: the service image plus the Redis client, so rate limits can count in a shared Redis
# (RATE_LIMIT_STORAGE_URI=redis://...; the service image alone has no Redis driver and refuses such
# a URI at startup). Built by replicas.yml with this directory as the context.
#
# Build arguments:
#   SERVICE_IMAGE  the service image built from the top-level Dockerfile (default sklearn-serve:latest,
#                  the tag `docker-compose build` at the top of the repository gives it).
#   WHEELS         a directory in this context holding the wheel for requirements.txt here, e.g.
#                  wheels (`python3 -m pip wheel -r requirements.txt -w wheels`), for builds where pip
#                  cannot reach PyPI; empty (default): from PyPI.
ARG SERVICE_IMAGE=sklearn-serve:latest
FROM ${SERVICE_IMAGE}
ARG WHEELS=
# The virtualenv belongs to root, like the code: install as root, then serve as the image's user again.
USER 0
COPY requirements.txt ${WHEELS:-requirements.txt} /tmp/wheels/
RUN if [ -n "${WHEELS}" ]; then \
        python3 -m pip install --no-cache-dir --no-index --find-links /tmp/wheels -r /tmp/wheels/requirements.txt; \
    else \
        python3 -m pip install --no-cache-dir -r /tmp/wheels/requirements.txt; \
    fi \
 && rm -rf /tmp/wheels \
 && python3 -c "import redis"
USER 10001:10001
