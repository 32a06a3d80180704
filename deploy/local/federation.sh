#!/usr/bin/env bash
# A complete federation on loopback, for trying things out and for the end-to-end test:
# a broker, the token service running apart from it with its own seed (as a deployment must
# run it: the broker never holds the key), and three agencyd instances with their own
# folders and certificates.
#
#   deploy/local/federation.sh start [DIR]    # default DIR: ./local-federation
#   deploy/local/federation.sh status [DIR]
#   deploy/local/federation.sh stop [DIR]
#
# Binaries come from $BIN_DIR (default: target/debug; build them with
# `cargo build --workspace`, the build `cargo test --workspace` makes). Ports: $BASE_PORT (broker),
# +1 (stand-alone token service), +2 (broker metrics). Development keys only.
set -euo pipefail

cmd="${1:-}"
dir="${2:-local-federation}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="${BIN_DIR:-$root/target/debug}"
base="${BASE_PORT:-17443}"
agencies=(yn-psb gd-psb gx-psb)

me=federation.sh
# shellcheck source=deploy/local/lib.sh
. "$root/deploy/local/lib.sh"

start() {
    need deconflict-broker; need agencyd; need deconflict
    [ -e "$dir/pids" ] && [ -n "$(ls -A "$dir/pids" 2>/dev/null)" ] && die "$dir is already running (stop it first)"
    mkdir -p "$dir"/{logs,pids}
    dir="$(cd "$dir" && pwd)"
    local b="$bin/deconflict-broker"
    if [ ! -f "$dir/pki/ca.pem" ]; then
        "$b" pki init-ca --dir "$dir/pki" --name "Local federation CA" --days 30 >/dev/null
        "$b" pki issue-server --dir "$dir/pki" --name broker --dns localhost --ip 127.0.0.1 --days 30 --out "$dir/pki/broker" >/dev/null
        "$b" pki issue-server --dir "$dir/pki" --name token-service --dns localhost --ip 127.0.0.1 --days 30 --out "$dir/pki/token-service" >/dev/null
        # The token service reads the broker's registry with this (role token-service below),
        # so that a suspension at the broker stops its evaluations too.
        "$b" pki issue-agency --dir "$dir/pki" --agency token-service-mirror --days 30 --out "$dir/pki/token-service-client" >/dev/null
        for a in "${agencies[@]}"; do
            mkdir -p "$dir/$a"
            "$b" pki issue-agency --dir "$dir/pki" --agency "$a" --days 30 --out "$dir/$a/cert" >/dev/null
            mv "$dir/$a/cert.key" "$dir/$a/key.pem"
            cp "$dir/pki/ca.pem" "$dir/$a/ca.pem"
        done
    fi
    cat >"$dir/token-service.toml" <<TOML
[server]
listen = "127.0.0.1:$((base + 1))"
data_dir = "token-service-data"
[tls]
ca_cert = "pki/ca.pem"
server_cert = "pki/token-service.pem"
server_key = "pki/token-service.key"
crl = "pki/crl.pem"
[token_service]
seed = "secrets/token-service.seed"
registry_broker = "https://127.0.0.1:$base"
registry_cert = "pki/token-service-client.pem"
registry_key = "pki/token-service-client.key"
TOML
    # The broker publishes the token service's public key; it never sees the seed.
    local ts_key
    ts_key="$("$b" token-service --config "$dir/token-service.toml" --show-public-key)"
    cat >"$dir/broker.toml" <<TOML
[server]
listen = "127.0.0.1:$base"
metrics_listen = "127.0.0.1:$((base + 2))"
data_dir = "broker-data"
[tls]
ca_cert = "pki/ca.pem"
server_cert = "pki/broker.pem"
server_key = "pki/broker.key"
crl = "pki/crl.pem"
[secrets]
pepper = "secrets/pepper"
[token_service]
$ts_key
[[agencies]]
id = "token-service-mirror"
role = "token-service"
display_name = "Token service (registry mirror)"
TOML
    start_bg broker "$b" serve --config "$dir/broker.toml"
    start_bg token-service "$b" token-service --config "$dir/token-service.toml"
    for a in "${agencies[@]}"; do
        cat >"$dir/$a/agencyd.toml" <<TOML
[tls]
cert = "cert.pem"
key = "key.pem"
ca = "ca.pem"
[broker]
address = "127.0.0.1:$base"
tls_domain = "localhost"
[daemon]
data_dir = "data"
socket = "data/agencyd.sock"
inbox_poll_ms = 200
[sinks]
jsonl = "data/alerts.jsonl"
TOML
    done
    wait_for "the broker" "$bin/agencyd" --config "$dir/${agencies[0]}/agencyd.toml" --show-published-key
    for a in "${agencies[@]}"; do
        # Development only: pin what the broker publishes (in production the administrator
        # hands the key out, and agencyd compares).
        "$bin/agencyd" --config "$dir/$a/agencyd.toml" --show-published-key >>"$dir/$a/agencyd.toml" 2>/dev/null
        # Tokens come from the token service itself (the section just printed is the last).
        printf 'address = "127.0.0.1:%s"\ntls_domain = "localhost"\n' "$((base + 1))" >>"$dir/$a/agencyd.toml"
        start_bg "agencyd-$a" "$bin/agencyd" --config "$dir/$a/agencyd.toml"
    done
    for a in "${agencies[@]}"; do
        wait_for "agencyd $a" env DECONFLICT_SOCKET="$dir/$a/data/agencyd.sock" "$bin/deconflict" status
    done
    echo "Federation running in $dir:"
    echo "  broker          127.0.0.1:$base (metrics http://127.0.0.1:$((base + 2))/metrics)"
    echo "  token service   127.0.0.1:$((base + 1)) (apart from the broker, its own seed)"
    for a in "${agencies[@]}"; do
        echo "  $a: DECONFLICT_SOCKET=$dir/$a/data/agencyd.sock $bin/deconflict status"
    done
    echo "Try: DECONFLICT_SOCKET=$dir/${agencies[0]}/data/agencyd.sock $bin/deconflict register -s 'phone=+86 138 0013 8000' --days 30"
    echo "Stop: $0 stop $dir"
}

stop() { # agencies first, then the services they talk to
    stop_in_order 'agencyd-*' token-service broker
}

status() {
    local names=(broker token-service)
    for a in "${agencies[@]}"; do names+=("agencyd-$a"); done
    status_of "${names[@]}"
}

case "$cmd" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) sed -n '2,12p' "$0"; exit 2 ;;
esac
