# Sourced by scripts: start a private, throwaway mariadbd in a temp dir on a free port.
#
#   private_mariadb_start WORKDIR [extra mariadbd options...]
#     sets PRIVATE_PORT, PRIVATE_SOCKET, PRIVATE_PID; the caller must call private_mariadb_stop
#   private_mariadb_sql SQL...       runs SQL as root over the socket
#   private_mariadb_stop             stops the server (the caller removes WORKDIR)

private_mariadb_start() {
  local work=$1; shift
  local mariadbd
  mariadbd=$(command -v mariadbd || echo /usr/sbin/mariadbd)
  [ -x "$mariadbd" ] || { echo "mariadbd not found: apt-get install mariadb-server" >&2; return 1; }
  PRIVATE_PORT=
  local p
  for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 20000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then PRIVATE_PORT=$p; break; fi
  done
  [ -n "$PRIVATE_PORT" ] || { echo "no free port found" >&2; return 1; }
  local user_opt=()
  [ "$(id -u)" = 0 ] && user_opt=(--user=root)
  mariadb-install-db --no-defaults --datadir="$work/data" --auth-root-authentication-method=normal \
    --skip-test-db "${user_opt[@]}" >"$work/install.log" 2>&1 \
    || { cat "$work/install.log" >&2; return 1; }
  PRIVATE_SOCKET="$work/mysqld.sock"
  "$mariadbd" --no-defaults --datadir="$work/data" --socket="$PRIVATE_SOCKET" --port="$PRIVATE_PORT" \
    --bind-address=127.0.0.1 --log-error="$work/error.log" --pid-file="$work/mysqld.pid" \
    --log-bin="$work/binlog" --binlog-format=ROW --binlog-row-image=FULL --server-id=1 \
    --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci \
    --innodb-flush-log-at-trx-commit=0 --sync-binlog=0 \
    "${user_opt[@]}" "$@" 2>>"$work/startup.log" &
  PRIVATE_PID=$!
  for _ in $(seq 1 300); do
    mariadb --no-defaults -S "$PRIVATE_SOCKET" -uroot -e 'SELECT 1' >/dev/null 2>&1 && return 0
    kill -0 "$PRIVATE_PID" 2>/dev/null || { cat "$work/error.log" >&2; return 1; }
    sleep 0.2
  done
  echo "mariadbd did not start in 60 s" >&2
  return 1
}

private_mariadb_sql() {
  mariadb --no-defaults -S "$PRIVATE_SOCKET" -uroot "$@"
}

private_mariadb_stop() {
  if [ -n "${PRIVATE_PID:-}" ]; then
    kill "$PRIVATE_PID" 2>/dev/null || true
    wait "$PRIVATE_PID" 2>/dev/null || true
    PRIVATE_PID=
  fi
}
