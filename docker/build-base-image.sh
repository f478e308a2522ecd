#!/usr/bin/env bash
# Build a local stand-in for the python:3.x-slim base image from Debian packages, for
# machines with no container registry: debootstrap + docker import. Cached by tag.
# Usage: docker/build-base-image.sh [TAG]   (default tickwire-base:py3)
set -euo pipefail
tag=${1:-tickwire-base:py3}
if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "base image $tag already exists"; exit 0
fi

# The Debian mirror and suite come from this machine's apt configuration: nothing is
# hard-coded here.
mirror=""
if compgen -G "/etc/apt/sources.list.d/*.sources" >/dev/null; then
  mirror=$(awk '/^URIs:/ && $2 ~ /debian\/?$/ {print $2; exit}' /etc/apt/sources.list.d/*.sources)
fi
if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
  mirror=$(awk '$1 == "deb" && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list)
fi
suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
if [ -z "$mirror" ] || [ -z "$suite" ]; then
  echo "cannot find a Debian mirror/suite in /etc/apt: pass a base image instead" >&2; exit 1
fi

root=$(mktemp -d /var/tmp/tickwire-rootfs.XXXXXX)
trap 'rm -rf "$root"' EXIT
echo "debootstrap $suite from $mirror into $root"
debootstrap --variant=minbase --include=python3,python3-pip,ca-certificates \
  "$suite" "$root" "$mirror" >"$root.log" 2>&1 || { tail -20 "$root.log" >&2; exit 1; }
rm -f "$root.log"
# Behave like the official python images: pip may install into the system interpreter,
# and `python` exists.
rm -f "$root"/usr/lib/python3*/EXTERNALLY-MANAGED
ln -sf python3 "$root/usr/bin/python"
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/usr/share/doc/* \
       "$root"/usr/share/man/* "$root"/usr/share/locale/*
tar -C "$root" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' - "$tag" >/dev/null
echo "built $tag ($(docker image inspect -f '{{.Size}}' "$tag") bytes)"
