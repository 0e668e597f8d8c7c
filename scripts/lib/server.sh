# Sourced by scripts that start the built server for a test step (e2e.sh,
# schemathesis.sh): a free port from a start, and a server that is always stopped.
# Needs `log` defined by the caller.

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_port START: prints the first free port from START (50 tried).
free_port() {
  local port=$1
  for _ in $(seq 1 50); do
    port_busy "$port" || break
    port=$((port + 1))
  done
  port_busy "$port" && { log "no free port found from $1"; exit 2; }
  echo "$port"
}

server_pid=
stop_server() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
}
trap stop_server EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
