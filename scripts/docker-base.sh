#!/usr/bin/env bash
# Build a local Docker base image from Debian packages, for machines that cannot pull images.
#
#   scripts/docker-base.sh [TAG]          # default TAG: sklearn-serve-base:bookworm
#
# It debootstraps a minimal Debian bookworm with python3 and python3-venv (Python 3.11, the
# version the pinned wheels are for) and imports it with `docker import`. Use it as the Dockerfile's
# base, with wheels made outside the build when pip cannot reach PyPI from inside it:
#
#   python3 -m pip wheel -r requirements.txt -w build/wheels     # a Python 3.11 on x86_64/glibc
#   docker build --build-arg BASE_IMAGE=sklearn-serve-base:bookworm \
#                --build-arg WHEELS=build/wheels -t sklearn-serve .
#
# Needs root, debootstrap (apt-get install debootstrap) and a running Docker engine. Idempotent:
# does nothing when TAG already exists (`docker image rm TAG` to rebuild it). Downloaded .debs are
# kept in build/debootstrap-cache so a rebuild does not fetch them again.
# Environment: MIRROR (default http://deb.debian.org/debian), SUITE (default bookworm).
set -euo pipefail

TAG=${1:-sklearn-serve-base:bookworm}
SUITE=${SUITE:-bookworm}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=$ROOT/build/debootstrap-cache

if docker image inspect "$TAG" >/dev/null 2>&1; then
    echo "docker-base: $TAG already exists"
    exit 0
fi
command -v debootstrap >/dev/null || { echo "docker-base: needs debootstrap (apt-get install debootstrap)" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "docker-base: debootstrap needs root" >&2; exit 1; }

mkdir -p "$ROOT/build" "$CACHE"
rootfs=$(mktemp -d "$ROOT/build/docker-base.XXXXXX")
# --one-file-system: never descend into a /proc or /sys that a failed debootstrap left mounted.
trap 'rm -rf --one-file-system "$rootfs"' EXIT
chmod 755 "$rootfs"    # it becomes the image's /, which every user must be able to traverse

echo "docker-base: debootstrap $SUITE from $MIRROR into $rootfs"
# unsafe-io: dpkg skips its fsyncs (a fifth faster); a crash only loses this throwaway tree.
# security-mac is dpkg's default force flag, which setting DPKG_FORCE would otherwise drop.
DPKG_FORCE=unsafe-io,security-mac debootstrap --variant=minbase --include=python3,python3-venv \
    --cache-dir="$CACHE" "$SUITE" "$rootfs" "$MIRROR"

# What an image never needs: package lists and apt's caches (the licenses in /usr/share/doc stay).
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin

# `docker import` gives an image with an empty config: PATH must be set here, or a Dockerfile's
# `ENV PATH=/opt/venv/bin:$PATH` would expand $PATH to nothing.
tar -C "$rootfs" --numeric-owner -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    --message "debootstrap $SUITE minbase + python3, python3-venv" \
    - "$TAG"
echo "docker-base: built $TAG"
