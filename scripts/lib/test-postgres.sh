# A throwaway PostgreSQL cluster for the test suite, reachable only through a
# Unix socket in a private temporary directory. Source this file, then
# `test_pg_start` (exports DATABASE_URL, TEST_PG_SOCKET_DIR, PG_BIN) and
# `test_pg_stop`.
# shellcheck shell=bash

TEST_PG_DIR=""

# PostgreSQL refuses to run as root; run it as the postgres user then.
_pg_as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

test_pg_start() {
    PG_BIN="$(pg_bin_dir)" || true
    [ -n "$PG_BIN" ] || die "initdb/pg_ctl not found; run scripts/setup"
    export PG_BIN
    TEST_PG_DIR="$(mktemp -d /tmp/loopback-test-pg.XXXXXX)"
    if [ "$(id -u)" = 0 ]; then
        chown postgres: "$TEST_PG_DIR"
    fi
    (
        cd "$TEST_PG_DIR"
        _pg_as_owner "$PG_BIN/initdb" -D "$TEST_PG_DIR/data" -U loopback --auth=trust \
            --encoding=UTF8 --locale=C --no-instructions >"$TEST_PG_DIR/initdb.log" 2>&1 ||
            { cat "$TEST_PG_DIR/initdb.log" >&2; exit 1; }
        # Durability is worthless for a throwaway cluster; speed is not.
        _pg_as_owner "$PG_BIN/pg_ctl" -D "$TEST_PG_DIR/data" -l "$TEST_PG_DIR/server.log" -w -t 60 \
            -o "-c listen_addresses='' -c unix_socket_directories='$TEST_PG_DIR' -c max_connections=400 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
            start >/dev/null ||
            { cat "$TEST_PG_DIR/server.log" >&2; exit 1; }
    ) || die "could not start the test PostgreSQL cluster"
    export TEST_PG_SOCKET_DIR="$TEST_PG_DIR"
    export DATABASE_URL="postgres://loopback@localhost/postgres?host=$TEST_PG_DIR"
    note "test PostgreSQL running, socket in $TEST_PG_DIR"
}

test_pg_stop() {
    [ -n "$TEST_PG_DIR" ] || return 0
    (cd "$TEST_PG_DIR" && _pg_as_owner "$PG_BIN/pg_ctl" -D "$TEST_PG_DIR/data" -m immediate -w stop >/dev/null 2>&1) || true
    rm -rf "$TEST_PG_DIR"
    TEST_PG_DIR=""
}
