# Sourced by scripts/demo and scripts/demo-cluster (from the repository root, after
# scripts/venv.sh): a scratch directory, processes stopped on exit, a local receiver.

work=$(mktemp -d)
started_pids=()
stop_everything() {
    local pid
    for pid in "${started_pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${started_pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap stop_everything EXIT

step() { printf '\n== %s\n' "$*"; }
show() { printf '+ %s\n' "$*"; }

free_port() {
    .venv/bin/python -c '
import socket
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])'
}

# wait_for_port PORT PID WHAT: until 127.0.0.1:PORT accepts (at most 15 s), or PID ends.
wait_for_port() {
    .venv/bin/python - "$1" "$2" "$3" <<'PY'
import os, socket, sys, time
port, pid, what = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
deadline = time.monotonic() + 15
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        sys.exit(f"{what} exited")
    try:
        socket.create_connection(("127.0.0.1", port), 0.5).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.05)
sys.exit(f"{what} did not listen within 15 s")
PY
}

# start_receiver: pynetdicom's storescp on a free port, writing to $work/received;
# sets receiver_port.
start_receiver() {
    receiver_port=$(free_port)
    mkdir -p "$work/received"
    .venv/bin/python -m pynetdicom storescp -ba 127.0.0.1 -od "$work/received" \
        "$receiver_port" >"$work/receiver.log" 2>&1 &
    started_pids+=($!)
    if ! wait_for_port "$receiver_port" "$!" "the receiver"; then
        cat "$work/receiver.log" >&2
        exit 1
    fi
    echo "receiver (pynetdicom storescp) listening on 127.0.0.1:$receiver_port"
}

# make_studies N IMAGES: N synthetic CT studies of IMAGES images each, in $work/studies.
make_studies() {
    local n
    for n in $(seq 1 "$1"); do
        .venv/bin/python scripts/make_study.py "$work/studies/study$n" --images "$2" --series 2
    done
    echo "wrote $1 studies of $2 images in $work/studies"
}

received() { find "$work/received" -type f | wc -l; }
