#!/usr/bin/env bash
# Prepare the host side of the compose federation, once, before `up`:
# directories and files the containers bind-mount, owned by or readable to
# the images' user (uid 49999, `app` in Flower's images), so that no manual
# chown is needed.
#
#   deploy/docker/prepare.sh          # results directory (plain compose.yml)
#   deploy/docker/prepare.sh --tls    # + TLS material and SuperNode keys (compose.tls.yml)
#
# Honours the variables compose.yml reads: RESULTS_DIR (default
# deploy/docker/results), CERTS_DIR (deploy/docker/certs), KEYS_DIR
# (deploy/docker/keys); NUM_SUPERNODES (3) keys are made. Keeps what exists.
# As root the files are handed to uid 49999; otherwise, where chown is not
# allowed, the results directory is made world-writable and the server key
# and node keys world-readable (say so, and keep those directories private).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
app_uid=${APP_UID:-49999}
tls=false
case "${1:-}" in
    --tls) tls=true ;;
    "") ;;
    *) echo "usage: prepare.sh [--tls]" >&2; exit 2 ;;
esac

# give PATH to the image user: chown where allowed, else open the mode
give() {
    local mode=$1 path=$2
    if chown "$app_uid:$app_uid" "$path" 2>/dev/null; then
        return
    fi
    chmod "$mode" "$path"
    echo "note: could not chown $path to uid $app_uid; made it mode $mode" >&2
}

results=${RESULTS_DIR:-$here/results}
mkdir -p "$results"
give 0777 "$results"
echo "results: $results (writable by uid $app_uid)"

if $tls; then
    certs=${CERTS_DIR:-$here/certs}
    keys=${KEYS_DIR:-$here/keys}
    # the names the containers (superlink) and the CLI on the host (localhost) dial
    "$here/../local/certs.sh" "$certs" "DNS:superlink,DNS:localhost,IP:127.0.0.1"
    give 0644 "$certs/server.key"
    mkdir -p "$keys"
    for ((i = 0; i < ${NUM_SUPERNODES:-3}; i++)); do
        [ -s "$keys/supernode-$i" ] ||
            ssh-keygen -q -t ecdsa -b 384 -N "" -C "supernode-$i" -f "$keys/supernode-$i"
        give 0644 "$keys/supernode-$i"
    done
    echo "TLS: $certs (ca.crt, server.pem, server.key), node keys: $keys/supernode-*"
fi
