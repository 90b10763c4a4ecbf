#!/usr/bin/env bash
# A real three-node Garage cluster on loopback, for the integration tests (tests/it/common/garage.rs)
# and for trying sealpost over S3 on one machine (deploy/README.md).
#
#   scripts/garage-cluster.sh start DIR            make DIR, start nodes 1-3 on free ports, lay them
#                                                  out in three zones (replication factor 3,
#                                                  consistent mode), create the bucket and a key with
#                                                  read/write/owner on it; prints the AWS_* lines,
#                                                  also written to DIR/env. On a DIR already set up,
#                                                  starts the nodes that are down.
#   scripts/garage-cluster.sh stop DIR [NODE]      stop node NODE (1-3), or every node
#   scripts/garage-cluster.sh start-node DIR NODE  start a stopped node again, on its old ports
#   scripts/garage-cluster.sh status DIR           each node's process and the cluster's view
#
# DIR/env is sourceable (`set -a; . DIR/env; set +a`): AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
# AWS_REGION, AWS_ENDPOINT_URL (node 1), AWS_ALLOW_HTTP, SEALPOST_BLOB_STORE (s3://BUCKET),
# GARAGE_BUCKET, and GARAGE_NODEn_S3 / GARAGE_NODEn_ADMIN for each node's endpoints.
# Needs: garage v2 (`cargo install garage --locked`; GARAGE=/path/to/garage to choose one), curl.
# Environment: GARAGE_BUCKET (default sealpost), GARAGE_REGION (default garage).
set -euo pipefail

NODES=(1 2 3)
BUCKET=${GARAGE_BUCKET:-sealpost}
REGION=${GARAGE_REGION:-garage}
KEY_NAME=sealpost
# How long a node may take to answer after it starts, and the cluster to settle, in seconds.
WAIT=${GARAGE_WAIT:-60}

die() {
    echo "garage-cluster: error: $1" >&2
    [ $# -lt 2 ] || echo "garage-cluster: hint: $2" >&2
    exit 1
}
note() { echo "garage-cluster: $*" >&2; }

usage() {
    sed -n '5,13p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

find_garage() {
    if [ -n "${GARAGE:-}" ]; then
        [ -x "$GARAGE" ] || die "GARAGE=$GARAGE is not an executable file"
    elif command -v garage >/dev/null; then
        GARAGE=$(command -v garage)
    elif [ -x "$HOME/.cargo/bin/garage" ]; then
        GARAGE=$HOME/.cargo/bin/garage
    else
        die "the \`garage\` binary is not on PATH" "install it with \`cargo install garage --locked\` (about 10 minutes)"
    fi
    local version
    version=$("$GARAGE" --version 2>/dev/null | head -n1) || true
    case "$version" in
        *:2.* | *" v2."* | *" 2."*) ;;
        *) die "\`$GARAGE\` says \`$version\`, and this script needs Garage 2.x" "install it with \`cargo install garage --locked\`" ;;
    esac
    command -v curl >/dev/null || die "\`curl\` is not on PATH" "install it with \`apt-get install -y curl\`"
}

# garage CLI against node N (it talks RPC to the node through N's config).
g() {
    local node=$1
    shift
    "$GARAGE" -c "$DIR/node$node/garage.toml" "$@"
}

pidfile() { echo "$DIR/node$1/garage.pid"; }

# The pid of node N's server, if it runs: the pid file's process, still running this node's
# configuration (a stale pid file may name a process that has since reused the number).
node_pid() {
    local pid
    pid=$(cat "$(pidfile "$1")" 2>/dev/null) || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    case "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" in
        *"$DIR/node$1/garage.toml server"*) echo "$pid" ;;
        *) return 1 ;;
    esac
}

running() { node_pid "$1" >/dev/null; }

# A TCP port in 20000-32767 (below Linux's ephemeral range, so outgoing connections do not take
# it) on which nothing listens, and not in USED.
USED=" "
free_port() {
    local port tries=0
    while :; do
        tries=$((tries + 1))
        [ $tries -le 200 ] || die "found no free TCP port on 127.0.0.1 in 200 tries"
        port=$((20000 + RANDOM % 12768))
        case "$USED" in *" $port "*) continue ;; esac
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then continue; fi
        USED="$USED$port "
        echo "$port"
        return
    done
}

load_ports() {
    [ -f "$DIR/ports" ] || die "\`$DIR\` holds no cluster" "make one with \`$0 start $DIR\`"
    # shellcheck source=/dev/null
    . "$DIR/ports"
}

port_of() { # port_of KIND NODE
    local var="$1$2"
    echo "${!var}"
}

write_config() { # write_config NODE RPC_SECRET [BOOTSTRAP_PEERS]
    local n=$1 secret=$2 peers=${3:-}
    mkdir -p "$DIR/node$n/meta" "$DIR/node$n/data"
    (
        umask 077
        cat >"$DIR/node$n/garage.toml" <<EOF
# Node $n of a three-node test cluster made by scripts/garage-cluster.sh.
metadata_dir = "$DIR/node$n/meta"
data_dir = "$DIR/node$n/data"
db_engine = "sqlite"
metadata_fsync = false
data_fsync = false

replication_factor = 3
consistency_mode = "consistent"

rpc_secret = "$secret"
rpc_bind_addr = "127.0.0.1:$(port_of RPC "$n")"
rpc_public_addr = "127.0.0.1:$(port_of RPC "$n")"
bootstrap_peers = [$peers]

[s3_api]
api_bind_addr = "127.0.0.1:$(port_of S3 "$n")"
s3_region = "$REGION"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:$(port_of ADMIN "$n")"
EOF
    )
}

start_daemon() {
    local n=$1
    [ -f "$DIR/node$n/garage.toml" ] || die "node $n has no configuration in \`$DIR\`"
    if running "$n"; then
        note "node $n is already running"
        return
    fi
    # setsid and closed standard streams: the node outlives this script and holds no pipe of its
    # caller open (a test harness reading our output would otherwise wait for the node to exit).
    RUST_LOG=${RUST_LOG:-garage=info} setsid "$GARAGE" -c "$DIR/node$n/garage.toml" server \
        </dev/null >>"$DIR/node$n/garage.log" 2>&1 &
    echo $! >"$(pidfile "$n")"
}

# Waits until node N answers RPC from its own CLI, or fails with the end of its log.
wait_node() {
    local n=$1 deadline=$((SECONDS + WAIT)) pid
    pid=$(cat "$(pidfile "$n")")
    while :; do
        # The process we started, by pid alone: until setsid has exec'd garage, its command line
        # is still this script's, which `running` would not recognise.
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 20 "$DIR/node$n/garage.log" >&2 || true
            die "node $n exited while starting (its log is above, in full at $DIR/node$n/garage.log)" \
                "a port may have been taken meanwhile: \`$0 start-node $DIR $n\` tries again on the same ports"
        fi
        g "$n" status >/dev/null 2>&1 && return
        [ $SECONDS -lt $deadline ] || die "node $n did not answer within ${WAIT}s (log: $DIR/node$n/garage.log)"
        sleep 0.2
    done
}

# Retries a command until it succeeds or WAIT seconds pass; then shows its last error.
retry() {
    local what=$1 deadline=$((SECONDS + WAIT)) out
    shift
    while :; do
        if out=$("$@" 2>&1); then
            printf '%s\n' "$out"
            return
        fi
        [ $SECONDS -lt $deadline ] || die "$what failed for ${WAIT}s: $(printf '%s' "$out" | tail -n 3)"
        sleep 0.3
    done
}

# Waits until node N's admin /health says the cluster can serve requests (HTTP 200).
wait_healthy() {
    local n=$1 deadline=$((SECONDS + WAIT)) code
    while :; do
        code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$(port_of ADMIN "$n")/health") || true
        [ "$code" = 200 ] && return
        [ $SECONDS -lt $deadline ] || die "node $n does not report a healthy cluster after ${WAIT}s (last answer HTTP $code)" \
            "see \`$0 status $DIR\` and $DIR/node*/garage.log"
        sleep 0.3
    done
}

cmd_start() {
    if [ -f "$DIR/env" ]; then
        load_ports
        for n in "${NODES[@]}"; do start_daemon "$n"; done
        for n in "${NODES[@]}"; do wait_node "$n"; done
        wait_healthy 1
        cat "$DIR/env"
        return
    fi
    if [ -e "$DIR" ] && [ -n "$(ls -A "$DIR")" ]; then
        die "\`$DIR\` is not empty and holds no finished cluster" "choose a new directory, or remove it first"
    fi
    mkdir -p "$DIR"
    DIR=$(cd "$DIR" && pwd)
    chmod 700 "$DIR"
    local started=$SECONDS

    {
        for n in "${NODES[@]}"; do
            echo "RPC$n=$(free_port)"
            echo "S3$n=$(free_port)"
            echo "ADMIN$n=$(free_port)"
        done
    } >"$DIR/ports.new"
    mv "$DIR/ports.new" "$DIR/ports"
    load_ports

    local secret
    secret=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
    for n in "${NODES[@]}"; do write_config "$n" "$secret"; done
    for n in "${NODES[@]}"; do start_daemon "$n"; done
    for n in "${NODES[@]}"; do wait_node "$n"; done

    # Introduce nodes 2 and 3 to node 1; the peer list is kept in each metadata_dir, so a node
    # restarted later finds the others by itself.
    local ids=()
    for n in "${NODES[@]}"; do
        ids[n]=$(g "$n" node id -q 2>/dev/null | head -n1)
        [ -n "${ids[n]}" ] || die "node $n did not tell its id"
    done
    for n in 2 3; do
        retry "connecting node 1 to node $n" g 1 node connect "${ids[n]}" >/dev/null
    done
    # Each node also gets the others as bootstrap peers, read when it starts: a node started again
    # dials them at once, instead of waiting for a peer's reconnection backoff (up to a minute).
    local peers
    peers=$(printf '"%s", ' "${ids[@]}")
    for n in "${NODES[@]}"; do write_config "$n" "$secret" "${peers%, }"; done

    # One node per zone, so each of the three copies lands in a different zone.
    for n in "${NODES[@]}"; do
        retry "assigning node $n to zone z$n" g 1 layout assign -z "z$n" -c 1G "${ids[n]%%@*}" >/dev/null
    done
    retry "applying the layout" g 1 layout apply --version 1 >/dev/null
    wait_healthy 1

    retry "creating bucket $BUCKET" g 1 bucket create "$BUCKET" >/dev/null
    local info key_id secret_key
    info=$(retry "creating the access key" g 1 key create "$KEY_NAME")
    key_id=$(printf '%s\n' "$info" | sed -n 's/^Key ID:[[:space:]]*\(GK[0-9a-f]*\).*/\1/p' | head -n1)
    secret_key=$(printf '%s\n' "$info" | sed -n 's/^Secret key:[[:space:]]*\([0-9a-f]*\).*/\1/p' | head -n1)
    if [ -z "$key_id" ] || [ -z "$secret_key" ]; then
        die "could not read the new key's id and secret in the output of \`garage key create\`" \
            "run \`$GARAGE -c $DIR/node1/garage.toml key info --show-secret $KEY_NAME\` to see what it prints now"
    fi
    retry "allowing the key on bucket $BUCKET" g 1 bucket allow --read --write --owner "$BUCKET" --key "$key_id" >/dev/null
    for n in "${NODES[@]}"; do wait_healthy "$n"; done

    (
        umask 077
        {
            echo "# Garage cluster in $DIR (scripts/garage-cluster.sh); source with: set -a; . $DIR/env; set +a"
            echo "AWS_ACCESS_KEY_ID=$key_id"
            echo "AWS_SECRET_ACCESS_KEY=$secret_key"
            echo "AWS_REGION=$REGION"
            echo "AWS_ENDPOINT_URL=http://127.0.0.1:$S31"
            echo "AWS_ALLOW_HTTP=true"
            echo "GARAGE_BUCKET=$BUCKET"
            echo "SEALPOST_BLOB_STORE=s3://$BUCKET"
            for n in "${NODES[@]}"; do
                echo "GARAGE_NODE${n}_S3=http://127.0.0.1:$(port_of S3 "$n")"
                echo "GARAGE_NODE${n}_ADMIN=http://127.0.0.1:$(port_of ADMIN "$n")"
            done
        } >"$DIR/env.new"
    )
    mv "$DIR/env.new" "$DIR/env"
    note "three nodes up in $((SECONDS - started))s; bucket \`$BUCKET\`; settings in $DIR/env"
    cat "$DIR/env"
}

# Stops the given nodes: SIGTERM to each (they shut down together), SIGKILL after 10s.
stop_nodes() {
    local n pid pids=()
    for n in "$@"; do
        pid=$(node_pid "$n") || continue
        kill -TERM "$pid" 2>/dev/null && pids+=("$n:$pid")
    done
    local deadline=$((SECONDS + 10)) entry
    for entry in ${pids[@]+"${pids[@]}"}; do
        n=${entry%%:*} pid=${entry#*:}
        while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then
            note "node $n did not stop within 10s of SIGTERM; killing it"
            kill -KILL "$pid" 2>/dev/null || true
            while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
        fi
    done
    for n in "$@"; do rm -f "$(pidfile "$n")"; done
}

check_node() {
    case "${1:-}" in
        1 | 2 | 3) ;;
        *) die "no node \`${1:-}\`: the nodes are 1, 2 and 3" ;;
    esac
}

cmd_stop() {
    [ -d "$DIR" ] || die "\`$DIR\` does not exist"
    if [ -n "${1:-}" ]; then
        check_node "$1"
        stop_nodes "$1"
    else
        stop_nodes "${NODES[@]}"
    fi
}

cmd_start_node() {
    check_node "${1:-}"
    load_ports
    start_daemon "$1"
    wait_node "$1"
    # Up is not yet useful: the node must find its peers again before it serves S3 requests.
    local up=0
    for n in "${NODES[@]}"; do running "$n" && up=$((up + 1)); done
    if [ $up -ge 2 ]; then
        wait_healthy "$1"
    else
        note "node $1 is up, but alone: the cluster has no quorum (2 of 3) until another node runs"
    fi
}

cmd_status() {
    load_ports
    local up=()
    for n in "${NODES[@]}"; do
        if running "$n"; then
            echo "node $n: running (pid $(cat "$(pidfile "$n")")), rpc $(port_of RPC "$n"), s3 $(port_of S3 "$n"), admin $(port_of ADMIN "$n")"
            up+=("$n")
        else
            echo "node $n: stopped, rpc $(port_of RPC "$n"), s3 $(port_of S3 "$n"), admin $(port_of ADMIN "$n")"
        fi
    done
    if [ ${#up[@]} -eq 0 ]; then
        echo "no node is running"
        return 3
    fi
    g "${up[0]}" status
}

[ $# -ge 2 ] || usage
command=$1
DIR=$2
shift 2
# Absolute, as in the nodes' configurations and command lines.
if [ -d "$DIR" ]; then DIR=$(cd "$DIR" && pwd); fi
find_garage
case "$command" in
    start) [ $# -eq 0 ] || usage; cmd_start ;;
    stop) [ $# -le 1 ] || usage; cmd_stop "$@" ;;
    start-node) [ $# -eq 1 ] || usage; cmd_start_node "$1" ;;
    status) [ $# -eq 0 ] || usage; cmd_status ;;
    *) usage ;;
esac
