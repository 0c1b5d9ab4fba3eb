# Redis from Debian's package, holding the replicas' rate-limit counters and nothing else: no
# persistence (losing it only resets the counts), reachable only on the compose network.
#
# BASE_IMAGE: as for haproxy.Dockerfile.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
# hadolint ignore=DL3008
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server \
 && rm -rf /var/lib/apt/lists/*
# The package's unprivileged user, by name: the package chose its id.
# hadolint ignore=DL3066
USER redis
EXPOSE 6379
# protected-mode off: it would refuse every client that is not on loopback, i.e. the replicas. No
# port is published, so only containers on the project's network reach it.
CMD ["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no", "--save", "", "--appendonly", "no", \
     "--dir", "/tmp", "--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru"]
