#!/usr/bin/env bash
# Join this node to a simulation cluster's Ray head as a worker.
#
#   deploy/ray-cluster/start-worker.sh HEAD_IP:RAY_PORT
#
# Makes this checkout's app importable by the ClientApp actors Ray starts here (a .pth file in
# the active environment's site-packages: the actors import the app by module name, and the FAB
# Flower installed lives on the head, under its FLWR_HOME), then starts Ray's worker processes.
# Environment: NODE_IP (this node's address the head reaches; default: the first of
# `hostname -I`), WORKER_CPUS / WORKER_GPUS (what Ray may schedule here; default all CPUs, no
# GPU), FEDAVG_DATA_DIR (where this node's ClientApps read the data; leave the run config's
# data-dir empty to use it), BLOCK=1 (stay in the foreground, as a container's or a unit's main
# process).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$here/common.sh"
address=${1:?usage: start-worker.sh HEAD_IP:RAY_PORT}
node_ip=${NODE_IP:-$(first_ip)}
check_versions
site=$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$repo" >"$site/fedavg_app.pth"
python -c 'import clients.app, tasks.registry' || {
    echo "the app does not import from $repo in this environment" >&2
    exit 1
}
args=(--address="$address" --node-ip-address="$node_ip" --num-cpus="${WORKER_CPUS:-$(nproc)}"
    --disable-usage-stats)
[ -n "${WORKER_GPUS:-}" ] && args+=(--num-gpus="$WORKER_GPUS")
[ "${BLOCK:-0}" = 1 ] && args+=(--block)
exec ray start "${args[@]}"
