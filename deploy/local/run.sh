#!/usr/bin/env bash
# A real federation on this machine: one SuperLink and N SuperNodes, each
# SuperNode holding only its own data directory; run one experiment, check
# that it finished as completed, stop exactly the processes started here.
#
#   deploy/local/run.sh [NUM_SUPERNODES] [flwr run options...]
#   FEDAVG_DATA_DIR=/path/to/data deploy/local/run.sh 3 -c "num-server-rounds=2"
#
# By default the SuperLink serves TLS (a private CA and a server certificate
# for localhost/127.0.0.1 made with openssl, deploy/local/certs.sh) and only
# admits SuperNodes whose ECDSA public key was registered with
# `flwr supernode register`. Runtime dependency installation is off
# everywhere (Flower would otherwise install the app's dependencies, torch
# included, from PyPI before each run).
#
# Environment (defaults in brackets):
#   FEDAVG_DATA_DIR   source data for preparing the nodes' directories and
#                     for the ServerApp's central test set [required unless
#                     NODE_DATA is prepared and the run config has data-dir]
#   SUPERLINK_PORT    the SuperLink's one HTTP(S) port [9500]
#   SUPERNODE_PORT    first SuperNode runtime port; node i gets +i [SUPERLINK_PORT+10]
#   WORK_DIR          certs, keys, state, logs, prepared node data [./.flwr_local];
#                     results go to the run config's results-dir, which the
#                     SuperLink resolves against the repository root [results/]
#   FLWR_HOME         the CLI's config home [$WORK_DIR/flwr_home]
#   NODE_DATA         root of the nodes' data directories [$WORK_DIR/data]
#   PARTITION, SEED, NUM_PARTITIONS
#                     how NODE_DATA is prepared when missing: iid|noniid, the run
#                     config seed, K [iid, 0, NUM_SUPERNODES]. The run config
#                     must use the same partition and seed (a node refuses data
#                     prepared for another one).
#   TLS=0             plain HTTP (no TLS; also turns authentication off)
#   AUTH=0            TLS but no SuperNode authentication
#   PROBE_UNREGISTERED=1
#                     also start one SuperNode with a key that was never
#                     registered and fail unless the SuperLink refuses it
#   EXECUTOR          what runs each SuperNode's ClientApp tasks [warm]:
#                     warm   = clients/warm_executor/ beside each SuperNode
#                              (--isolation process): one long-lived process
#                              per node that forks a child per task
#                              (docs/warm-executor.md);
#                     flower = Flower's own SuperExec (--isolation subprocess):
#                              a fresh flwr-clientapp process per task
#   FLWR_SUPEREXEC_TASK_POLL_INTERVAL
#                     seconds between an executor's task polls [warm: 0.1,
#                     flower: Flower's 1]
#   KILL_SUPERNODE=i  fault test: once round KILL_AFTER_ROUND [1] has ended,
#                     kill -9 SuperNode i (and its ClientApp processes) while
#                     it is training, as a crashed machine would vanish; the
#                     run must still finish (set round-timeout so that a round
#                     does not wait long for the dead node's reply)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
app=$(cd "$here/../.." && pwd)
num_nodes=${1:-3}
shift || true
# Unknown keys and bad values fail here, in one line, before anything starts
# (plain `flwr run` answers an unknown key with "[code: 15] Invalid run configuration.").
python -m server.run_check --app "$app" "$@" || exit 2
port=${SUPERLINK_PORT:-9500}
node_port=${SUPERNODE_PORT:-$((port + 10))}
work=$(mkdir -p "${WORK_DIR:-$app/.flwr_local}" && cd "${WORK_DIR:-$app/.flwr_local}" && pwd)
export FLWR_HOME=${FLWR_HOME:-$work/flwr_home}
export FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION=1 FLWR_TELEMETRY_ENABLED=0
export FLWR_DISABLE_UPDATE_CHECK=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
tls=${TLS:-1}
executor=${EXECUTOR:-warm}
case $executor in warm | flower) ;; *) echo "EXECUTOR must be warm or flower, got '$executor'" >&2; exit 2 ;; esac
auth=${AUTH:-1}
[ "$tls" = 1 ] || auth=0 # Flower refuses authentication without TLS
partition=${PARTITION:-iid}
seed=${SEED:-0}
num_partitions=${NUM_PARTITIONS:-$num_nodes}
node_data=${NODE_DATA:-$work/data}
logs=$work/logs
mkdir -p "$FLWR_HOME" "$logs" "$work/keys"

pids=()
node_pids=()
exec_pids=() # the warm executor of each SuperNode (EXECUTOR=warm)
descendants() { # PID -> its child processes, recursively (flower-superexec, flwr-clientapp)
    local child
    for child in $(pgrep -P "$1" 2>/dev/null); do
        echo "$child"
        descendants "$child"
    done
}
stop_all() {
    # SuperNodes first (reverse start order), then the SuperLink. Their
    # flower-superexec children follow them via --parent-pid, but slowly on a
    # busy machine, and a superexec orphaned with ClientApps in flight keeps
    # relaunching them: so collect the whole tree first and stop every
    # process in it that is still there after a grace period.
    local i tree=()
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        # shellcheck disable=SC2207
        tree+=("${pids[i]}" $(descendants "${pids[i]}"))
    done
    [ ${#tree[@]} -gt 0 ] || return 0
    kill "${tree[@]}" 2>/dev/null || true
    local list
    list=$(IFS=,; echo "${tree[*]}")
    for _ in $(seq 1 20); do
        # Zombies (this sandbox's PID 1 does not reap) count as gone.
        ps -o stat= -p "$list" 2>/dev/null | grep -qv '^Z' || break
        sleep 0.5
    done
    kill -9 "${tree[@]}" 2>/dev/null || true
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop_all EXIT
trap 'exit 130' INT TERM
say() { echo "[deploy/local] $*"; }

# --- node data: each SuperNode gets its own directory and nothing else -------
dataset_dir=$node_data/mnist-$partition-$num_partitions
width=$((${#num_partitions} > 3 ? ${#num_partitions} : 3))
if [ "$num_nodes" -gt "$num_partitions" ]; then
    echo "NUM_SUPERNODES=$num_nodes exceeds K=NUM_PARTITIONS=$num_partitions" >&2
    exit 2
fi
last=$(printf "%s/client-%0${width}d" "$dataset_dir" $((num_nodes - 1)))
if [ ! -f "$last/manifest.json" ]; then
    say "preparing $num_nodes of K=$num_partitions $partition partitions in $dataset_dir"
    python -m clients.prepare_data --partition "$partition" --seed "$seed" \
        --num-partitions "$num_partitions" --clients "$num_nodes" \
        --data-dir "${FEDAVG_DATA_DIR:-}" --out "$node_data" >"$logs/prepare.log"
    tail -n 1 "$logs/prepare.log"
fi

# --- TLS and the CLI's connection profile --------------------------------------
if [ "$tls" = 1 ]; then
    bash "$here/certs.sh" "$work/certs" >/dev/null
    link_tls=(--ssl-ca-certfile "$work/certs/ca.crt" --ssl-certfile "$work/certs/server.pem"
        --ssl-keyfile "$work/certs/server.key")
    node_tls=(--root-certificates "$work/certs/ca.crt")
    profile="root-certificates = \"$work/certs/ca.crt\""
    health=(curl -sf --cacert "$work/certs/ca.crt" "https://127.0.0.1:$port/health")
else
    link_tls=(--insecure)
    node_tls=(--insecure)
    profile="insecure = true"
    health=(curl -sf "http://127.0.0.1:$port/health")
fi
link_auth=()
[ "$auth" = 1 ] && link_auth=(--enable-supernode-auth)
cat >"$FLWR_HOME/config.toml" <<TOML
[superlink]
default = "local-deploy"

[superlink.local-deploy]
address = "127.0.0.1:$port"
$profile
TOML

# --- SuperLink -------------------------------------------------------------------
# A fresh state database per run: registered keys and node ids start clean.
rm -f "$work/state.db"
# The ServerApp resolves relative paths (results-dir) against the SuperLink's cwd.
(cd "$app" && exec flower-superlink "${link_tls[@]}" "${link_auth[@]}" \
    --disable-runtime-dependency-installation --database "$work/state.db" \
    --host 127.0.0.1 --port "$port") >"$logs/superlink.log" 2>&1 &
pids+=($!)
superlink=$!
for _ in $(seq 1 120); do
    "${health[@]}" >/dev/null 2>&1 && break
    kill -0 "$superlink" 2>/dev/null || {
        cat "$logs/superlink.log"
        echo "SuperLink failed to start" >&2
        exit 1
    }
    sleep 0.25
done
say "SuperLink on 127.0.0.1:$port (pid $superlink, TLS=$tls, auth=$auth, executor=$executor)"

new_key() { # a fresh OpenSSH ECDSA key pair (NIST P-384), as Flower expects
    rm -f "$1" "$1.pub"
    ssh-keygen -q -t ecdsa -b 384 -N "" -C "$(basename "$1")" -f "$1"
}

start_supernode() { # NAME RUNTIME_PORT NODE_CONFIG [KEY [NO_EXECUTOR]]
    local auth_args=() isolation=subprocess supernode
    [ -n "${4:-}" ] && auth_args=(--auth-supernode-private-key "$4")
    [ "$executor" = warm ] && isolation=process
    # No FEDAVG_DATA_DIR: a node sees its own data-path only.
    env -u FEDAVG_DATA_DIR flower-supernode "${node_tls[@]}" "${auth_args[@]}" \
        --superlink "127.0.0.1:$port" --port "$2" --isolation "$isolation" \
        --node-config "$3" >"$logs/$1.log" 2>&1 &
    supernode=$!
    if [ "$executor" = warm ] && [ -z "${5:-}" ]; then
        # Its ClientApps: one warm process on the node's (loopback-only) Runtime API,
        # leaving when the SuperNode does. The SuperNode's pid stays last in pids.
        env -u FEDAVG_DATA_DIR fedavg-warm-executor --insecure \
            --runtime-api-address "127.0.0.1:$2" --parent-pid "$supernode" \
            >"$logs/$1.executor.log" 2>&1 &
        pids+=($!)
        exec_pids+=($!)
    fi
    pids+=("$supernode")
}

# --- SuperNodes ----------------------------------------------------------------
for ((i = 0; i < num_nodes; i++)); do
    name=$(printf "supernode-%0${width}d" "$i")
    key=""
    if [ "$auth" = 1 ]; then
        key=$work/keys/$name
        new_key "$key"
        flwr supernode register "$key.pub" local-deploy --name "$name" >"$logs/register-$name.log" 2>&1 ||
            { cat "$logs/register-$name.log" >&2; exit 1; }
    fi
    data_path=$(printf "%s/client-%0${width}d" "$dataset_dir" "$i")
    start_supernode "$name" $((node_port + i)) "data-path='$data_path'" "$key"
    node_pids+=("${pids[-1]}")
done
say "$num_nodes SuperNodes started (runtime ports $node_port..$((node_port + num_nodes - 1)))"

if [ "${PROBE_UNREGISTERED:-0}" = 1 ]; then
    [ "$auth" = 1 ] || { echo "PROBE_UNREGISTERED needs TLS and AUTH" >&2; exit 2; }
    new_key "$work/keys/intruder"
    start_supernode intruder $((node_port + num_nodes)) \
        "data-path='$(printf "%s/client-%0${width}d" "$dataset_dir" 0)'" "$work/keys/intruder" \
        no-executor # it must never get a task
    intruder=${pids[-1]}
    for _ in $(seq 1 240); do kill -0 "$intruder" 2>/dev/null || break; sleep 0.25; done
    if kill -0 "$intruder" 2>/dev/null; then
        echo "a SuperNode with an unregistered key was not refused within 60 s" >&2
        exit 1
    fi
    code=0
    wait "$intruder" || code=$?
    grep -q "Failed to activate SuperNode" "$logs/intruder.log" ||
        { cat "$logs/intruder.log" >&2; echo "unexpected intruder exit" >&2; exit 1; }
    say "unregistered SuperNode refused (exit $code: $(grep -o 'Failed to activate SuperNode' "$logs/intruder.log" | head -1))"
fi

running_task() { # NODE_INDEX: does the node run a ClientApp now?
    if [ "$executor" = warm ]; then
        [ -n "$(descendants "${exec_pids[$1]}")" ] # a forked child is a running task
    else
        descendants "${node_pids[$1]}" | xargs -r -n1 ps -o args= -p 2>/dev/null | grep -q flwr-clientapp
    fi
}

kill_mid_round() { # NODE_INDEX AFTER_ROUND: see KILL_SUPERNODE
    local victim=${node_pids[$1]} name others=()
    [ "$executor" = warm ] && others=("${exec_pids[$1]}")
    name=$(printf "supernode-%0${width}d" "$1")
    for _ in $(seq 1 2400); do
        grep -q "\[round *$2/" "$logs/run.log" 2>/dev/null && break
        sleep 0.25
    done
    # Mid-round: wait (up to 2 min) until the node runs a ClientApp.
    local when="after round $2 (it ran no ClientApp within 2 min)"
    for _ in $(seq 1 1200); do
        if running_task "$1"; then
            when="mid-round, while training, after round $2"
            break
        fi
        sleep 0.1
    done
    # shellcheck disable=SC2046
    kill -9 "$victim" $(descendants "$victim") "${others[@]}" \
        $(for p in "${others[@]}"; do descendants "$p"; done) 2>/dev/null || true
    say "killed $name (pid $victim) with SIGKILL $when"
}

# --- the run -------------------------------------------------------------------
out=$(flwr run "$app" local-deploy --format json "$@")
run_id=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1]).get("run-id", ""))' "$out")
[ -n "$run_id" ] || { echo "flwr run failed: $out" >&2; exit 1; }
say "run $run_id started"
: >"$logs/run.log"
if [ -n "${KILL_SUPERNODE:-}" ]; then
    kill_mid_round "$KILL_SUPERNODE" "${KILL_AFTER_ROUND:-1}" &
    killer=$!
fi
flwr log "$run_id" local-deploy --stream 2>&1 | tee "$logs/run.log" || true
[ -z "${killer:-}" ] || wait "$killer" || true
# `flwr log --stream` returns when the run ends; its exit code says nothing about the run.
status=unknown
for _ in $(seq 1 60); do
    status=$(flwr ls local-deploy --run-id "$run_id" --format json |
        python3 -c 'import json,sys; r=json.load(sys.stdin)["runs"][0]; print(r["status"], r.get("status-details", ""))' 2>/dev/null || true)
    case $status in finished:*) break ;; esac
    sleep 1
done
say "run $run_id: $status"
case $status in finished:completed*) exit 0 ;; *) exit 1 ;; esac
