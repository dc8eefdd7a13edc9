#!/usr/bin/env bash
# Start the Ray head of a simulation cluster on this node (then run.sh here, start-worker.sh on
# the others).
#
#   deploy/ray-cluster/start-head.sh
#
# Environment: HEAD_IP (this node's address the workers reach; default: the first of
# `hostname -I`), RAY_PORT (default 6379), HEAD_CPUS / HEAD_GPUS (what Ray may schedule
# ClientApps on here; default: all CPUs, no GPU), RAY_TEMP_DIR (Ray's session files; default
# Ray's /tmp/ray). The ServerApp and the SuperLink also run here and use no Ray resources.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/common.sh"
head_ip=${HEAD_IP:-$(first_ip)}
port=${RAY_PORT:-6379}
check_versions
args=(--head --node-ip-address="$head_ip" --port="$port" --num-cpus="${HEAD_CPUS:-$(nproc)}"
    --disable-usage-stats --include-dashboard=false)
[ -n "${HEAD_GPUS:-}" ] && args+=(--num-gpus="$HEAD_GPUS")
[ -n "${RAY_TEMP_DIR:-}" ] && args+=(--temp-dir="$RAY_TEMP_DIR")
ray start "${args[@]}" >/dev/null
echo "ray head: $head_ip:$port"
echo "on each worker node: deploy/ray-cluster/start-worker.sh $head_ip:$port"
echo "then here: deploy/ray-cluster/run.sh NUM_SUPERNODES [flwr run options]"
