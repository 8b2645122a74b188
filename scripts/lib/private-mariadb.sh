#!/usr/bin/env bash
# The project's one launcher of a private, throwaway mariadbd (temp dir, free port, binlog on):
# the tests' harness (tests/support/mod.rs), scripts/demo, the benches, conformance and meltano-e2e
# all start their server here, with the one list of server flags in private_mariadb_flags.
#
# Sourced by scripts:
#   private_mariadb_start WORKDIR [extra mariadbd options...]
#     sets PRIVATE_PORT, PRIVATE_SOCKET, PRIVATE_PID; the caller must call private_mariadb_stop
#   private_mariadb_sql SQL...       runs SQL as root over the socket
#   private_mariadb_stop             stops the server (the caller removes WORKDIR)
#
# Run as a command (the tests' harness does):
#   private-mariadb.sh start [--watch PID] WORKDIR [extra mariadbd options...]
#     starts the server in the background, waits until it accepts connections (60 s at most),
#     prints `port=N`, `socket=PATH`, `pid=N` and `error_log=PATH` lines on stdout and exits 0
#     with the server running. With --watch PID, a watchdog kills the server and deletes WORKDIR
#     as soon as process PID is gone, however it ended. On failure: exit 1, the reason and the
#     server's error log on stderr.
#   private-mariadb.sh stop WORKDIR
#     stops a server started in WORKDIR (by its pid file).
#
# Extra options come after the fixed ones, so they win (mariadbd keeps an option's last value).

# The server's flags, after the per-instance paths and port: binlog ROW with full images and
# full metadata, GTID domain 0, a fixed server_id, utf8mb4, and durability off (throwaway data).
private_mariadb_flags=(
  --bind-address=127.0.0.1
  --binlog-format=ROW
  --binlog-row-image=FULL
  --binlog-row-metadata=FULL
  --server-id=1
  --gtid-domain-id=0
  --max-connections=500
  --innodb-buffer-pool-size=512M
  --innodb-log-file-size=256M
  --innodb-flush-log-at-trx-commit=0
  --sync-binlog=0
  --innodb-doublewrite=0
  --skip-name-resolve
  --character-set-server=utf8mb4
  --collation-server=utf8mb4_general_ci
)

# The first of the named programs found on PATH or in the usual sbin/bin folders.
_private_mariadb_find() {
  local name dir
  for name in "$@"; do
    if command -v "$name" >/dev/null 2>&1; then command -v "$name"; return 0; fi
    for dir in /usr/sbin /usr/bin /usr/local/sbin /usr/local/bin; do
      if [ -x "$dir/$name" ]; then echo "$dir/$name"; return 0; fi
    done
  done
  return 1
}

# A TCP port on 127.0.0.1 that nothing listens on.
_private_mariadb_port() {
  local p
  for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 20000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
  done
  return 1
}

private_mariadb_start() {
  local work=$1; shift
  local mariadbd install client
  mariadbd=$(_private_mariadb_find mariadbd mysqld) \
    || { echo "mariadbd not found on PATH or in /usr/sbin: install Debian's mariadb-server package (apt-get install mariadb-server)" >&2; return 1; }
  install=$(_private_mariadb_find mariadb-install-db mysql_install_db) \
    || { echo "mariadb-install-db not found: install Debian's mariadb-server package" >&2; return 1; }
  # The client checks that the server answers; without it (a server-only install), the error
  # log's "ready for connections" line has to do. private_mariadb_sql needs it.
  client=$(_private_mariadb_find mariadb mysql) || client=
  PRIVATE_CLIENT=$client
  local user_opt=()
  [ "$(id -u)" = 0 ] && user_opt=(--user=root)
  # Its own tmpdir: a starting mariadbd (the bootstrap of mariadb-install-db too) deletes every
  # `#sql*` file in its tmpdir, and with a shared /tmp those are another running server's
  # internal temporary tables. That server then crashes (signal 11 in ha_maria::drop_table)
  # at the end of its next information_schema query.
  mkdir -p "$work/tmp"
  "$install" --no-defaults --datadir="$work/data" --tmpdir="$work/tmp" \
    --auth-root-authentication-method=normal \
    --skip-test-db "${user_opt[@]}" >"$work/install.log" 2>&1 \
    || { echo "mariadb-install-db failed:" >&2; cat "$work/install.log" >&2; return 1; }
  PRIVATE_SOCKET="$work/mysqld.sock"
  if [ -n "${PRIVATE_WATCH:-}" ]; then
    # Detached from every pipe of the caller, so nobody waits for it. It kills the server last
    # launched (launcher.pid), then removes the directory.
    (
      while kill -0 "$PRIVATE_WATCH" 2>/dev/null; do sleep 1; done
      pid=$(cat "$work/launcher.pid" 2>/dev/null) && kill -9 "$pid" 2>/dev/null
      sleep 1
      rm -rf "$work"
    ) </dev/null >/dev/null 2>&1 &
  fi
  local attempt deadline status
  # Another process can take the port between the check and the bind: then try another one.
  for attempt in 1 2 3; do
    PRIVATE_PORT=$(_private_mariadb_port) || { echo "no free port found" >&2; return 1; }
    "$mariadbd" --no-defaults --datadir="$work/data" --tmpdir="$work/tmp" --socket="$PRIVATE_SOCKET" \
      --port="$PRIVATE_PORT" --pid-file="$work/mysqld.pid" --log-error="$work/error.log" \
      --log-bin="$work/binlog" "${private_mariadb_flags[@]}" "${user_opt[@]}" "$@" \
      </dev/null >>"$work/startup.log" 2>&1 &
    PRIVATE_PID=$!
    echo "$PRIVATE_PID" >"$work/launcher.pid"
    deadline=$((SECONDS + 60))
    while [ "$SECONDS" -lt "$deadline" ]; do
      if [ -n "$client" ]; then
        "$client" --no-defaults -S "$PRIVATE_SOCKET" -uroot -e 'SELECT 1' >/dev/null 2>&1 && return 0
      elif [ -S "$PRIVATE_SOCKET" ] && grep -q "ready for connections" "$work/error.log" 2>/dev/null; then
        return 0
      fi
      if ! kill -0 "$PRIVATE_PID" 2>/dev/null; then
        status=0
        wait "$PRIVATE_PID" 2>/dev/null || status=$?
        PRIVATE_PID=
        if [ "$attempt" -lt 3 ] && grep -q "Address already in use" "$work/error.log" 2>/dev/null; then
          continue 2
        fi
        echo "mariadbd exited with status $status; its error log ($work/error.log):" >&2
        cat "$work/error.log" "$work/startup.log" >&2 2>/dev/null || true
        return 1
      fi
      sleep 0.2
    done
    echo "mariadbd did not accept connections within 60 s; its error log ($work/error.log):" >&2
    cat "$work/error.log" >&2 2>/dev/null || true
    private_mariadb_stop
    return 1
  done
}

private_mariadb_sql() {
  [ -n "${PRIVATE_CLIENT:-}" ] \
    || { echo "the mariadb client not found: install Debian's mariadb-client package" >&2; return 1; }
  "$PRIVATE_CLIENT" --no-defaults -S "$PRIVATE_SOCKET" -uroot "$@"
}

private_mariadb_stop() {
  if [ -n "${PRIVATE_PID:-}" ]; then
    kill "$PRIVATE_PID" 2>/dev/null || true
    wait "$PRIVATE_PID" 2>/dev/null || true
    PRIVATE_PID=
  fi
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -uo pipefail
  usage="usage: $0 start [--watch PID] WORKDIR [mariadbd options...] | $0 stop WORKDIR"
  case "${1:-}" in
    start)
      shift
      PRIVATE_WATCH=
      if [ "${1:-}" = --watch ]; then PRIVATE_WATCH=${2:?$usage}; shift 2; fi
      work=${1:?$usage}; shift
      [ -d "$work" ] || { echo "$work: no such directory" >&2; exit 1; }
      work=$(cd "$work" && pwd)
      private_mariadb_start "$work" "$@" || exit 1
      printf 'port=%s\nsocket=%s\npid=%s\nerror_log=%s\n' \
        "$PRIVATE_PORT" "$PRIVATE_SOCKET" "$PRIVATE_PID" "$work/error.log"
      ;;
    stop)
      work=${2:?$usage}
      pid=$(cat "$work/mysqld.pid" 2>/dev/null) || { echo "$work: no server pid file" >&2; exit 1; }
      kill "$pid" 2>/dev/null || exit 0
      for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || exit 0; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
      ;;
    *)
      echo "$usage" >&2
      exit 2
      ;;
  esac
fi
