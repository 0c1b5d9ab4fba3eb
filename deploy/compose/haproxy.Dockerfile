# HAProxy from Debian's package, with this directory's haproxy.cfg: the balancer in front of the replicas.
#
# BASE_IMAGE: any Debian bookworm image whose apt can reach a mirror: debian:bookworm-slim (default),
# or the local base scripts/docker-base.sh builds where images cannot be pulled.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
# Unpinned on purpose: Debian replaces a version when it ships a security fix, and a pin would then
# fail to build instead of taking the fix.
# hadolint ignore=DL3008
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends haproxy \
 && rm -rf /var/lib/apt/lists/*
COPY haproxy.cfg /etc/haproxy/haproxy.cfg
RUN haproxy -c -q -f /etc/haproxy/haproxy.cfg
# Ports above 1024 only, so the package's unprivileged user can bind them. Named: the package chose its id.
# hadolint ignore=DL3066
USER haproxy
EXPOSE 8000 8404
# -W: a master process that stays PID 1 and restarts nothing by itself; -db: in the foreground, logging to stdout.
CMD ["haproxy", "-W", "-db", "-f", "/etc/haproxy/haproxy.cfg"]
