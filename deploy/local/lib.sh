# Shared by federation.sh and joint.sh (sourced, not run): messages, the binaries, waiting for
# a service, background processes with pid files, stopping them in order, and their status.
# The caller sets $me (its name for messages), $dir (the federation's folder) and $bin.

die() { echo "$me: $*" >&2; exit 1; }
need() { [ -x "$bin/$1" ] || die "$bin/$1 is missing: cargo build --workspace (or set BIN_DIR)"; }

wait_for() { # wait_for DESCRIPTION COMMAND...
    local what="$1"; shift
    for _ in $(seq 1 200); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    die "$what did not come up; see $dir/logs/"
}

start_bg() { # start_bg NAME COMMAND...
    local name="$1"; shift
    "$@" >"$dir/logs/$name.log" 2>&1 &
    echo $! >"$dir/pids/$name.pid"
}

stop_in_order() { # stop_in_order PATTERN... : pid files, the ones to stop first first
    local pids=()
    for f in "$dir"/pids/*.pid; do
        [ -e "$f" ] || continue
        kill -0 "$(cat "$f")" 2>/dev/null && pids+=("$(cat "$f")")
    done
    if [ "${#pids[@]}" -eq 0 ]; then
        rm -f "$dir"/pids/*.pid 2>/dev/null || true
        echo "nothing running in $dir"
        return 0
    fi
    local pattern f
    for pattern in "$@"; do
        for f in "$dir"/pids/$pattern.pid; do
            [ -e "$f" ] && kill -TERM "$(cat "$f")" 2>/dev/null || true
        done
    done
    for p in "${pids[@]}"; do
        for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$p" 2>/dev/null && { echo "process $p did not stop; killing it" >&2; kill -KILL "$p" || true; }
    done
    rm -f "$dir"/pids/*.pid
    echo "stopped"
}

status_of() { # status_of NAME...: one line per process, running or not
    local name f p
    for name in "$@"; do
        f="$dir/pids/$name.pid" p=""
        [ -e "$f" ] && p="$(cat "$f")"
        if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then
            echo "$name: running (pid $p)"
        else
            echo "$name: not running"
        fi
    done
}
