#!/usr/bin/env bash
# A cross-border joint federation on loopback (token spec section 5, docs/joint-federation.md):
# China's home federation (a broker, Yunnan and Guangxi bureaus), Laos's (a broker, one
# Vientiane police unit), each country's token service holding one share of the joint key
# and serving the other side's agencies too, and a joint broker trusting both CAs, each under
# its namespace. Every agencyd takes part in the joint federation "mekong".
#
#   deploy/local/joint.sh start [DIR]    # default DIR: ./local-joint
#   deploy/local/joint.sh status [DIR]
#   deploy/local/joint.sh stop [DIR]
#
# A cross-border match in three commands once it runs (start prints them). Binaries come from
# $BIN_DIR (default: target/debug, made by `cargo build --workspace`). Ports from $BASE_PORT:
# +0 China's broker, +1 Laos's broker, +2 China's share, +3 Laos's share, +4 the joint broker.
# Development keys only.
set -euo pipefail

cmd="${1:-}"
dir="${2:-local-joint}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="${BIN_DIR:-$root/target/debug}"
base="${BASE_PORT:-18443}"
cn_agencies=(yn-psb gx-psb)
la_agencies=(vte-police)

me=joint.sh
# shellcheck source=deploy/local/lib.sh
. "$root/deploy/local/lib.sh"

# pki COUNTRY CA-NAME AGENCY...: a CA, servers for the home broker and the share service, and
# the agencies' certificates.
pki() {
    local c="$1" name="$2"; shift 2
    local b="$bin/deconflict-broker"
    [ -f "$dir/$c/pki/ca.pem" ] && return 0
    "$b" pki init-ca --dir "$dir/$c/pki" --name "$name" --days 30 >/dev/null
    for s in broker share joint; do
        "$b" pki issue-server --dir "$dir/$c/pki" --name "$s" --dns localhost --ip 127.0.0.1 --days 30 --out "$dir/$c/pki/$s" >/dev/null
    done
    for a in "$@"; do
        mkdir -p "$dir/$a"
        "$b" pki issue-agency --dir "$dir/$c/pki" --agency "$a" --days 30 --out "$dir/$a/cert" >/dev/null
        mv "$dir/$a/cert.key" "$dir/$a/key.pem"
    done
}

# home COUNTRY PORT: the country's home broker (its own token service inside, development only).
home() {
    local c="$1" port="$2"
    cat >"$dir/$c/broker.toml" <<TOML
[server]
listen = "127.0.0.1:$port"
data_dir = "broker-data"
[tls]
ca_cert = "pki/ca.pem"
server_cert = "pki/broker.pem"
server_key = "pki/broker.key"
crl = "pki/crl.pem"
[secrets]
pepper = "secrets/pepper"
TOML
    start_bg "broker-$c" "$bin/deconflict-broker" serve --config "$dir/$c/broker.toml"
}

# share COUNTRY PORT PARTNER NAMESPACE: the country's token service holding its key share,
# serving the partner's agencies under NAMESPACE too.
share() {
    local c="$1" port="$2" partner="$3" ns="$4"
    cat >"$dir/$c/share.toml" <<TOML
[server]
listen = "127.0.0.1:$port"
data_dir = "share-data"
[tls]
ca_cert = "pki/ca.pem"
server_cert = "pki/share.pem"
server_key = "pki/share.key"
crl = "pki/crl.pem"
[[tls.partner_cas]]
namespace = "$ns"
ca_cert = "../$partner/pki/ca.pem"
crl = "../$partner/pki/crl.pem"
[token_service]
seed = "secrets/share.seed"
TOML
    "$bin/deconflict-broker" token-service --config "$dir/$c/share.toml" --show-public-key \
        | sed -n 's/^external_public_key = "\(.*\)"$/\1/p' >"$dir/$c/share.pub"
    [ -s "$dir/$c/share.pub" ] || die "could not read $c's share key"
    start_bg "share-$c" "$bin/deconflict-broker" token-service --config "$dir/$c/share.toml"
}

start() {
    need deconflict-broker; need agencyd; need deconflict
    [ -e "$dir/pids" ] && [ -n "$(ls -A "$dir/pids" 2>/dev/null)" ] && die "$dir is already running (stop it first)"
    mkdir -p "$dir"/{logs,pids,cn,la}
    dir="$(cd "$dir" && pwd)"
    pki cn "China local test CA" "${cn_agencies[@]}"
    pki la "Lao local test CA" "${la_agencies[@]}"
    home cn "$base"
    home la "$((base + 1))"
    share cn "$((base + 2))" la la
    share la "$((base + 3))" cn cn
    # The joint broker: run by a body both trust (here with a certificate of China's CA), no
    # token service of its own, both CAs under their namespaces, both shares published.
    cat >"$dir/joint.toml" <<TOML
[server]
listen = "127.0.0.1:$((base + 4))"
data_dir = "joint-data"
[tls]
ca_cert = "cn/pki/ca.pem"
server_cert = "cn/pki/joint.pem"
server_key = "cn/pki/joint.key"
crl = "cn/pki/crl.pem"
namespace = "cn"
[[tls.partner_cas]]
namespace = "la"
ca_cert = "la/pki/ca.pem"
crl = "la/pki/crl.pem"
[secrets]
pepper = "joint-secrets/pepper"
audit_key = "joint-secrets/audit-checkpoint.key"
[token_service]
enabled = false
[[joint_shares]]
name = "China"
public_key = "$(cat "$dir/cn/share.pub")"
key_epoch = 1
[[joint_shares]]
name = "Lao PDR"
public_key = "$(cat "$dir/la/share.pub")"
key_epoch = 1
TOML
    start_bg joint-broker "$bin/deconflict-broker" serve --config "$dir/joint.toml"
    for a in "${cn_agencies[@]}"; do agencyd "$a" cn "$base"; done
    for a in "${la_agencies[@]}"; do agencyd "$a" la "$((base + 1))"; done
    for a in "${cn_agencies[@]}" "${la_agencies[@]}"; do
        wait_for "agencyd $a" env DECONFLICT_SOCKET="$dir/$a/data/agencyd.sock" "$bin/deconflict" status
    done
    local yn="DECONFLICT_SOCKET=$dir/yn-psb/data/agencyd.sock $bin/deconflict"
    local la="DECONFLICT_SOCKET=$dir/vte-police/data/agencyd.sock $bin/deconflict"
    echo "Joint federation \"mekong\" running in $dir:"
    echo "  China's broker  127.0.0.1:$base       Laos's broker  127.0.0.1:$((base + 1))"
    echo "  China's share   127.0.0.1:$((base + 2))   Laos's share   127.0.0.1:$((base + 3))"
    echo "  joint broker    127.0.0.1:$((base + 4))"
    echo "A cross-border match in three commands:"
    echo "  $yn register --case YN-2026-114 --days 7 -s passport=CN/E12345678 --release-to mekong"
    echo "  $la register --case LA-2026-007 --days 7 -s passport=CN/E12345678 --release-to mekong"
    echo "  $la alerts"
    echo "Stop: $0 stop $dir"
}

# agencyd AGENCY COUNTRY HOME-PORT: one agency's daemon, at home and in "mekong".
agencyd() {
    local a="$1" c="$2" port="$3"
    cp "$dir/$c/pki/ca.pem" "$dir/$a/ca.pem"
    cat >"$dir/$a/agencyd.toml" <<TOML
[tls]
cert = "cert.pem"
key = "key.pem"
ca = "ca.pem"
[broker]
address = "127.0.0.1:$port"
tls_domain = "localhost"
[daemon]
data_dir = "data"
socket = "data/agencyd.sock"
inbox_poll_ms = 200
[sinks]
jsonl = "data/alerts.jsonl"
[[joint]]
name = "mekong"
broker = "127.0.0.1:$((base + 4))"
broker_ca = "../cn/pki/ca.pem"
tls_domain = "localhost"
share_a = { address = "127.0.0.1:$((base + 2))", ca = "../cn/pki/ca.pem", tls_domain = "localhost", public_key = "$(cat "$dir/cn/share.pub")", key_epoch = 1 }
share_b = { address = "127.0.0.1:$((base + 3))", ca = "../la/pki/ca.pem", tls_domain = "localhost", public_key = "$(cat "$dir/la/share.pub")", key_epoch = 1 }
TOML
    wait_for "the $c broker" "$bin/agencyd" --config "$dir/$a/agencyd.toml" --show-published-key
    # Development only: pin what the home broker publishes.
    "$bin/agencyd" --config "$dir/$a/agencyd.toml" --show-published-key >>"$dir/$a/agencyd.toml" 2>/dev/null
    start_bg "agencyd-$a" "$bin/agencyd" --config "$dir/$a/agencyd.toml"
}

names() {
    echo broker-cn broker-la share-cn share-la joint-broker
    for a in "${cn_agencies[@]}" "${la_agencies[@]}"; do echo "agencyd-$a"; done
}

stop() { # agencies first, then the services they talk to
    stop_in_order 'agencyd-*' 'share-*' '*broker*'
}

status() {
    # shellcheck disable=SC2046
    status_of $(names)
}

case "$cmd" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) sed -n '2,15p' "$0"; exit 2 ;;
esac
