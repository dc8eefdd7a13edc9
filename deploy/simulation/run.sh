#!/usr/bin/env bash
# Run one experiment in simulation (Ray) through a SuperLink of our own, and
# fail when the run did not finish as completed.
#
#   deploy/simulation/run.sh [NUM_SUPERNODES] [flwr run options...]
#   deploy/simulation/run.sh 100 -c "lr=0.05 num-server-rounds=20"
#
# Why not plain `flwr run .`: the CLI's managed SuperLink outlives the command,
# keeps the environment of the first run that spawned it, installs the app's
# dependencies from PyPI unless told not to, and `flwr run --stream` exits 0
# even when the ServerApp crashed. This script avoids all four.
# Environment: FLWR_HOME (default ./.flwr_home), SUPERLINK_PORT (default 9191),
# CLIENT_CPUS (default 1: one ClientApp per core), CLIENT_GPUS (default unset: no GPU),
# FEDAVG_APP (default: this repository): another Flower app to run the same way, e.g. one of a
# user's own that imports our strategy (tests/apps/quickstart_dp); its run config is not ours,
# so the schema check is skipped.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
app=$(cd "${FEDAVG_APP:-$repo}" && pwd)
num_supernodes=${1:-100}
shift || true
# Unknown keys and bad values fail here, in one line, before anything starts
# (plain `flwr run` answers an unknown key with "[code: 15] Invalid run configuration.").
if [ "$app" = "$repo" ]; then
    python -m server.run_check --app "$app" "$@" || exit 2
fi
port=${SUPERLINK_PORT:-9191}
export FLWR_HOME=${FLWR_HOME:-$app/.flwr_home}
export FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION=1 FLWR_TELEMETRY_ENABLED=0 FLWR_DISABLE_UPDATE_CHECK=1
# Ray's "Tip: ... RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO=0" FutureWarning, once per run: silenced,
# not followed. Setting that variable to 0 would let ClientApps given no GPU see every GPU.
export PYTHONWARNINGS=${PYTHONWARNINGS:+$PYTHONWARNINGS,}ignore::FutureWarning:ray._private.worker
mkdir -p "$FLWR_HOME"
cat > "$FLWR_HOME/config.toml" <<TOML
[superlink]
default = "sim"

[superlink.sim]
address = "127.0.0.1:$port"
insecure = true
TOML

log=$FLWR_HOME/superlink-$port.log
# The ServerApp resolves relative paths (results-dir) against the SuperLink's cwd.
(cd "$app" && exec flower-superlink --insecure --simulation \
    --disable-runtime-dependency-installation \
    --database "$FLWR_HOME/state-$port.db" \
    --host 127.0.0.1 --port "$port") >"$log" 2>&1 &
superlink=$!
trap 'kill $superlink 2>/dev/null; wait $superlink 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do
    curl -sf "http://127.0.0.1:$port/health" >/dev/null && break
    kill -0 $superlink 2>/dev/null || { cat "$log"; echo "SuperLink failed to start" >&2; exit 1; }
    sleep 0.25
done

# CLIENT_GPUS (e.g. 0.25: four ClientApps share a GPU) only when set: the default stays CPU.
gpus=${CLIENT_GPUS:+ client-resources-num-gpus=$CLIENT_GPUS}
out=$(flwr run "$app" sim --format json \
    --federation-config "num-supernodes=$num_supernodes client-resources-num-cpus=${CLIENT_CPUS:-1}$gpus" "$@")
run_id=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1]).get("run-id", ""))' "$out")
[ -n "$run_id" ] || { echo "flwr run failed: $out" >&2; exit 1; }
echo "run $run_id started"
# Flower 1.42 logs "Since flwr 1.32, default simulated SuperNodes changed from 10 to 2." in
# every simulation run, whatever num-supernodes says (flwr/simulation/app.py logs it
# unconditionally); the line after it gives the real number. We set it, so the warning is cut.
flwr log "$run_id" sim --stream 2>&1 |
    grep --line-buffered -v "default simulated SuperNodes changed from 10 to 2" || true
# `flwr log --stream` returns when the run ends; its exit code says nothing about the run.
for _ in $(seq 1 60); do
    status=$(flwr ls sim --run-id "$run_id" --format json |
        python3 -c 'import json,sys; r=json.load(sys.stdin)["runs"][0]; print(r["status"], r.get("status-details", ""))' 2>/dev/null || true)
    case $status in finished:*) break ;; esac
    sleep 1
done
echo "run $run_id: $status"
case $status in finished:completed*) exit 0 ;; *) exit 1 ;; esac
