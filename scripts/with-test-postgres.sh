#!/usr/bin/env bash
# Runs a command with TEST_DATABASE_URL pointing at a throwaway PostgreSQL cluster, started here
# from the server binaries and removed when the command ends. With TEST_DATABASE_URL already set,
# runs the command as it is.
set -euo pipefail

if [[ -n "${TEST_DATABASE_URL:-}" ]]; then
    exec "$@"
fi

bin="${PG_BIN:-}"
if [[ -z "$bin" ]]; then
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
fi
if [[ -z "$bin" || ! -x "$bin/initdb" ]]; then
    if command -v pg_config >/dev/null && [[ -x "$(pg_config --bindir)/initdb" ]]; then
        bin=$(pg_config --bindir)
    else
        echo "error: PostgreSQL server binaries (initdb, pg_ctl) not found." >&2
        echo "       Install them (apt-get install postgresql), set PG_BIN to their directory," >&2
        echo "       or set TEST_DATABASE_URL to a server the tests may create databases on." >&2
        exit 1
    fi
fi

dir=$(mktemp -d /tmp/iot-api-pg.XXXXXX)
as_pg=()
if [[ $(id -u) -eq 0 ]]; then
    # PostgreSQL refuses to run as root.
    chown postgres: "$dir"
    as_pg=(runuser -u postgres --)
fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

stop() {
    "${as_pg[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$dir"
}
trap stop EXIT

"${as_pg[@]}" "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
"${as_pg[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
    -o "-c port=$port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
    start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
echo "test PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port" >&2

export TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
"$@"
