#!/usr/bin/env bash
# Run one experiment on the Ray cluster this node heads (start-head.sh), through our SuperLink,
# exactly as deploy/simulation/run.sh runs it on one machine.
#
#   deploy/ray-cluster/run.sh NUM_SUPERNODES [flwr run options...]
#
# Environment: RAY_ADDRESS (default: HEAD_IP:RAY_PORT as start-head.sh used them),
# MIN_RAY_NODES (wait until this many Ray nodes are alive; default 1), and those of
# deploy/simulation/run.sh. Flower's simulation attaches to the running cluster through
# RAY_ADDRESS, which the SuperLink passes on to it; its ClientApp actors then go wherever the
# cluster has CPUs (client-resources-num-cpus each, CLIENT_CPUS).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/common.sh"
export RAY_ADDRESS=${RAY_ADDRESS:-${HEAD_IP:-$(first_ip)}:${RAY_PORT:-6379}}
want=${MIN_RAY_NODES:-1}
for _ in $(seq 1 120); do
    alive=$(python - <<'PY' 2>/dev/null || echo 0
import ray

ray.init(logging_level="ERROR", log_to_driver=False)
print(sum(1 for node in ray.nodes() if node["Alive"]))
PY
)
    [ "$alive" -ge "$want" ] && break
    sleep 1
done
[ "$alive" -ge "$want" ] || { echo "only $alive of $want Ray nodes alive at $RAY_ADDRESS" >&2; exit 1; }
echo "ray cluster $RAY_ADDRESS: $alive node(s)"
exec "$here/../simulation/run.sh" "$@"
