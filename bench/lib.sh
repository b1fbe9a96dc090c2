# Shared by the loopback benchmark scripts (sourced, not run): a scratch
# folder removed on exit, the processes to stop with it, and waiting for a
# process to say it is ready.
work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT INT TERM

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_line() { # wait_line FILE PATTERN: until FILE has a line matching PATTERN (120 s at most)
  for _ in $(seq 1200); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "timed out waiting for $2 in $1" >&2; exit 1
}
