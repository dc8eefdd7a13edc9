#!/usr/bin/env bash
# Stand-in Flower images for the container tests, where the official
# flwr/superlink, flwr/supernode and flwr/superexec images cannot be pulled
# (no container registry reachable). Built as Flower builds its own: a Debian
# rootfs (debootstrap, from the mirror the host's apt uses), flwr from PyPI in
# a venv at /python/venv, user `app` uid 49999, workdir /app, the entrypoint
# of each official image. Tagged docker.io/flwr/<name>:$FLWR_VERSION, so that
# compose and `FROM flwr/superexec:...` find them unchanged; reused by tag
# (delete them with `podman rmi` to rebuild). Not user-facing: a machine with
# a registry uses the official images.
#
#   tests/containers/standin_images.sh          # needs root, podman, debootstrap
#
# If the host's package egress needs extra CA certificates, they come from the
# host's trust store at build time into the rootfs; nothing is committed.
set -euo pipefail
version=${FLWR_VERSION:-1.42.0}
podman=${PODMAN:-podman}
suite=${DEBIAN_SUITE:-bookworm} # its python3 (3.11) matches the app's cp311 wheels
declare -A entrypoint=(
    [superlink]=flower-superlink
    [supernode]=flower-supernode
    [superexec]=flower-superexec
)
missing=()
for name in "${!entrypoint[@]}"; do
    "$podman" image exists "docker.io/flwr/$name:$version" || missing+=("$name")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "stand-in flwr images $version: present"
    exit 0
fi

base=localhost/fedavg-flwr-standin-base:$version
if ! "$podman" image exists "$base"; then
    mirror=${DEBIAN_MIRROR:-}
    if [ -z "$mirror" ]; then # the mirror the host's apt uses
        mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
    fi
    if [ -z "$mirror" ]; then
        mirror=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
    fi
    [ -n "$mirror" ] || { echo "no Debian mirror: set DEBIAN_MIRROR" >&2; exit 1; }
    work=$(mktemp -d "${TMPDIR:-/var/tmp}/flwr-standin.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    rootfs=$work/rootfs
    echo "debootstrap $suite from $mirror into $rootfs"
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
        "$suite" "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 ||
        { tail -n 30 "$work/debootstrap.log" >&2; exit 1; }
    # the host's trust store (extra CAs its egress may need), at build time only
    cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
    cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
    # in the rootfs, none of the host's settings (pip's find-links, caches)
    in_root() { chroot "$rootfs" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root "$@"; }
    in_root python3 -m venv /python/venv
    printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\nno-cache-dir = true\n' \
        >"$rootfs/python/venv/pip.conf"
    in_root /python/venv/bin/python -m pip install -q "flwr==$version"
    in_root useradd --uid 49999 --user-group --create-home --shell /bin/bash app
    mkdir -p "$rootfs/app"
    in_root chown -R app:app /app /python
    : >"$rootfs/etc/resolv.conf"
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
        "$rootfs"/root/.cache
    tar -C "$rootfs" -c . | "$podman" import \
        --change 'ENV PATH=/python/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV PYTHONUNBUFFERED=1' \
        --change 'USER app' \
        --change 'WORKDIR /app' \
        - "$base" >/dev/null
fi
ctx=$(mktemp -d "${TMPDIR:-/var/tmp}/flwr-standin-ctx.XXXXXX")
for name in "${missing[@]}"; do
    printf 'FROM %s\nENV HOME=/home/app\nUSER app\nWORKDIR /app\nENTRYPOINT ["%s"]\n' \
        "$base" "${entrypoint[$name]}" >"$ctx/Containerfile"
    "$podman" build -q -t "docker.io/flwr/$name:$version" -f "$ctx/Containerfile" "$ctx" >/dev/null
    echo "built stand-in docker.io/flwr/$name:$version"
done
rm -rf "$ctx"
