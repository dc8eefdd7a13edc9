#!/usr/bin/env bash
# A Ray worker node on this machine that shares no network stack with it: a network namespace
# joined to the host by a veth pair, then start-worker.sh inside it. For trying the cluster on
# one machine, and for tests/test_e2e_ray_cluster.py and benchmarks/ray_cluster.py. Needs root.
#
#   deploy/ray-cluster/netns-worker.sh net NAME    # the namespace and the link: HEAD_IP exists
#   HEAD_IP=10.231.77.1 deploy/ray-cluster/start-head.sh
#   deploy/ray-cluster/netns-worker.sh up NAME     # the worker node in it (net first if needed)
#   deploy/ray-cluster/netns-worker.sh down NAME   # kills what runs inside, removes the namespace
#
# Environment: HEAD_IP (default 10.231.77.1, given to the host's end), WORKER_IP (default
# 10.231.77.2), RAY_PORT (default 6379), WORKER_CPUS (default 1) and those of start-worker.sh.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
action=${1:?usage: netns-worker.sh net|up|down NAME}
name=${2:?usage: netns-worker.sh net|up|down NAME}
head_ip=${HEAD_IP:-10.231.77.1}
worker_ip=${WORKER_IP:-10.231.77.2}
# veth names are at most 15 characters
link=$(printf '%s' "$name" | md5sum | cut -c1-8)
network() {
    ip netns list | grep -qw "$name" && return 0
    ip netns add "$name"
    ip link add "fh$link" type veth peer name "fw$link"
    ip link set "fw$link" netns "$name"
    ip addr add "$head_ip/30" dev "fh$link"
    ip link set "fh$link" up
    ip netns exec "$name" ip addr add "$worker_ip/30" dev "fw$link"
    ip netns exec "$name" ip link set "fw$link" up
    ip netns exec "$name" ip link set lo up
}
case $action in
net)
    network
    ;;
up)
    network
    ip netns exec "$name" env NODE_IP="$worker_ip" WORKER_CPUS="${WORKER_CPUS:-1}" \
        bash "$here/start-worker.sh" "$head_ip:${RAY_PORT:-6379}"
    ;;
down)
    for pid in $(ip netns pids "$name" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    ip link del "fh$link" 2>/dev/null || true
    ip netns del "$name" 2>/dev/null || true
    ;;
*)
    echo "usage: netns-worker.sh net|up|down NAME" >&2
    exit 2
    ;;
esac
