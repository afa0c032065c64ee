#!/usr/bin/env bash
# `make bench`: release build, a throwaway PostgreSQL tuned for benchmarking, the dataset seeded
# through the service's own API, wrk load per scenario, pgbench / COPY references in the same
# run, and BENCHMARKS.md at the repository root.
#
#   BENCH_SCALE=full|small   (default full, ~25 min on 2 cores; small about two minutes, for development)
#   BENCH_CONNS              wrk connections = pgbench clients = IOT_DB_POOL_SIZE (default 4)
#   BENCH_WARM, BENCH_SECS   wrk warm-up / measured seconds (full 5/15, small 1/2)
#   BENCH_BULK_CONNS         wrk connections of the bulk-ingest scenario (default 2)
#   BENCH_INGEST_RATE        readings/s of the writer in the ingest-while-reading phase (default 2000,
#                            in batches of 100)
#   BENCH_KEEP=1             keep the work directory (cluster data, logs) after the run
#   BENCH_BIN=path           use this binary instead of building (harness development only)
#
# Everything it starts (PostgreSQL cluster, server) is stopped and removed on exit and on Ctrl-C.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
here="$root/scripts/bench"
cd "$root"

scale=${BENCH_SCALE:-full}
case "$scale" in
    full) warm=5; secs=15; pg_warm=3; pg_secs=15 ;;
    small) warm=1; secs=2; pg_warm=0; pg_secs=1 ;;
    *) echo "BENCH_SCALE must be full or small, got '$scale'" >&2; exit 2 ;;
esac
warm=${BENCH_WARM:-$warm}; secs=${BENCH_SECS:-$secs}   # wrk warm-up / measured seconds
conns=${BENCH_CONNS:-4}
bulk_conns=${BENCH_BULK_CONNS:-2}
pool=$conns
t_start=$(date +%s)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

log() { printf '\n== %s  (%ds)\n' "$*" "$(( $(date +%s) - t_start ))" >&2; }

# --- tools ------------------------------------------------------------------------------------
need_apt=()
command -v wrk >/dev/null || need_apt+=(wrk)
command -v python3 >/dev/null || need_apt+=(python3)
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [[ -n "${PG_BIN:-}" ]]; then bin=$PG_BIN; fi
if [[ -z "$bin" || ! -x "$bin/initdb" ]]; then
    if command -v pg_config >/dev/null && [[ -x "$(pg_config --bindir)/initdb" ]]; then
        bin=$(pg_config --bindir)
    else
        need_apt+=(postgresql postgresql-contrib)
    fi
fi
if ((${#need_apt[@]})); then
    log "installing ${need_apt[*]}"
    if [[ $(id -u) -ne 0 ]]; then echo "need root (or install: ${need_apt[*]})" >&2; exit 1; fi
    apt-get install -y "${need_apt[@]}" >/dev/null 2>&1 \
        || { apt-get update >/dev/null && apt-get install -y "${need_apt[@]}" >/dev/null; }
    bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
fi
pgbench=$bin/pgbench; [[ -x $pgbench ]] || pgbench=$(command -v pgbench)
psql_bin=$bin/psql; [[ -x $psql_bin ]] || psql_bin=$(command -v psql)

# --- build ------------------------------------------------------------------------------------
t_build=$(date +%s)
if [[ -n "${BENCH_BIN:-}" ]]; then  # harness development only: an existing binary, no build
    server_bin=$BENCH_BIN
else
    log "cargo build --release -p iot-api"
    ${CARGO:-cargo} build --release -p iot-api
    server_bin=$root/target/release/iot-api
fi
build_secs=$(( $(date +%s) - t_build ))

# --- work dir, cleanup ------------------------------------------------------------------------
work=$(mktemp -d /tmp/iot-bench.XXXXXX)
chmod 755 "$work"
as_pg=()
if [[ $(id -u) -eq 0 ]]; then
    chown postgres: "$work"
    as_pg=(runuser -u postgres --)
fi
results=$work/results
mkdir -p "$results"
chmod 777 "$results"
server_pid=""
writer_pid=""
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -n "$writer_pid" ]]; then kill -TERM "$writer_pid" 2>/dev/null || true; wait "$writer_pid" 2>/dev/null || true; fi
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$server_pid" 2>/dev/null || true
    fi
    if [[ -f "$work/data/postmaster.pid" ]]; then
        "${as_pg[@]}" "$bin/pg_ctl" -D "$work/data" -m immediate stop >/dev/null 2>&1 || true
    fi
    mkdir -p "$root/target/bench"
    rm -rf "$root/target/bench/last"
    cp -r "$results" "$root/target/bench/last" 2>/dev/null || true
    cp "$work"/*.log "$root/target/bench/last/" 2>/dev/null || true
    if [[ "${BENCH_KEEP:-0}" == 1 ]]; then echo "kept $work" >&2; else rm -rf "$work"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT TERM

free_port() {  # a free TCP port below 32768
    python3 -c '
import random, socket
for _ in range(200):
    p = random.randint(15000, 32767)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p)); s.close(); print(p); break
    except OSError:
        s.close()
'
}

# --- PostgreSQL -------------------------------------------------------------------------------
pg_port=$(free_port)
mem_mb=$(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo)
if [[ $scale == full ]]; then sb=$(( mem_mb / 4 > 4096 ? 4096 : mem_mb / 4 )); else sb=512; fi
# Benchmark-only settings: durability is off (fsync, synchronous_commit, full_page_writes), so a
# crash loses the cluster -- it is thrown away anyway. JIT is off (it only adds latency to these
# short OLTP queries); checkpoints are spaced out so the seed does not thrash.
pg_opts=(
    "-c port=$pg_port" "-c listen_addresses=127.0.0.1" "-c unix_socket_directories=$work"
    "-c max_connections=100" "-c shared_buffers=${sb}MB" "-c effective_cache_size=$(( mem_mb / 2 ))MB"
    "-c work_mem=32MB" "-c maintenance_work_mem=512MB" "-c fsync=off" "-c synchronous_commit=off"
    "-c full_page_writes=off" "-c wal_level=minimal" "-c max_wal_senders=0" "-c max_wal_size=8GB"
    "-c checkpoint_timeout=30min" "-c random_page_cost=1.1" "-c jit=off"
    "-c autovacuum_vacuum_cost_limit=2000" "-c track_io_timing=on"
)
log "PostgreSQL on 127.0.0.1:$pg_port (shared_buffers=${sb}MB, fsync=off, synchronous_commit=off)"
"${as_pg[@]}" "$bin/initdb" -D "$work/data" -U postgres -A trust -E UTF8 --no-sync >"$work/initdb.log" 2>&1 \
    || { cat "$work/initdb.log" >&2; exit 1; }
"${as_pg[@]}" "$bin/pg_ctl" -D "$work/data" -l "$work/postgres.log" -w -o "${pg_opts[*]}" start >/dev/null \
    || { cat "$work/postgres.log" >&2; exit 1; }
psql() { "${as_pg[@]}" "$psql_bin" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$pg_port" -U postgres -d iot "$@"; }
"${as_pg[@]}" "$psql_bin" -X -q -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres -c "CREATE DATABASE iot"

# --- server -----------------------------------------------------------------------------------
api_port=$(free_port)
export IOT_JWT_SECRET=${IOT_JWT_SECRET:-bench-only-secret-0123456789abcdef0123456789}
base=http://127.0.0.1:$api_port
# start_server [VIEWS_MB]: the service, keeping VIEWS_MB of rendered group views (default: its own).
start_server() {
    DATABASE_URL="postgres://postgres@127.0.0.1:$pg_port/iot" IOT_BIND=127.0.0.1:$api_port \
        IOT_DB_POOL_SIZE=$pool RUST_LOG=${RUST_LOG:-warn} \
        env ${1:+IOT_GROUP_VIEWS_MB=$1} "$server_bin" serve >>"$work/server.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 300); do
        if curl -fs "$base/health/ready" >/dev/null 2>&1; then return 0; fi
        kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
        sleep 0.1
    done
    echo "server did not become ready" >&2; cat "$work/server.log" >&2; exit 1
}
# stop_server: records the server's peak memory (the report takes the highest of all servers).
servers=0
stop_server() {
    servers=$(( servers + 1 ))
    grep -E 'VmHWM|VmRSS' "/proc/$server_pid/status" >"$results/server_mem.$servers.txt"
    kill "$server_pid"; wait "$server_pid" 2>/dev/null || true
}
log "iot-api on $base (IOT_DB_POOL_SIZE=$pool, workers = $(nproc) cores)"
start_server

# --- seed -------------------------------------------------------------------------------------
log "seeding through the API"
python3 "$here/seed.py" --base "$base" --bin "$server_bin" --scale "$scale" --out "$results/seed.json"
# The service rolls ended hours up in the background (a bounded job a minute); the seeded hours
# are rolled up here at once, as that job would, so it does not run under the measured scenarios.
# roll_up_pending: every pending hour that has ended, rolled up at once in SQL: the statement of
# the service's job (`ROLL_HOUR`) for each hour, through the index (a LATERAL per hour: joined on
# the tenant alone with the hour as a filter, the planner may compare every reading with every
# pending hour).
roll_up_pending() {
    psql -c "WITH p AS (DELETE FROM reading_rollups_pending WHERE bucket < date_trunc('hour', now(), 'UTC')
                        RETURNING tenant_id, bucket)
             INSERT INTO reading_rollups_hour (tenant_id, device_id, bucket, n, total, lo, hi, first_ts,
                                               first_value, last_ts, last_value)
             SELECT p.tenant_id, h.* FROM p CROSS JOIN LATERAL (
                SELECT r.device_id, p.bucket, count(*) AS n, sum(r.value) AS total, min(r.value) AS lo,
                       max(r.value) AS hi, min(r.ts) AS first_ts,
                       (min(ARRAY[date_part('epoch', r.ts), r.value]))[2] AS first_value, max(r.ts) AS last_ts,
                       (max(ARRAY[date_part('epoch', r.ts), r.value]))[2] AS last_value
                FROM readings r WHERE r.tenant_id = p.tenant_id AND r.ts >= p.bucket
                                  AND r.ts < p.bucket + interval '1 hour'
                GROUP BY r.device_id) h
             ON CONFLICT (tenant_id, device_id, bucket) DO UPDATE SET n = EXCLUDED.n, total = EXCLUDED.total,
                lo = EXCLUDED.lo, hi = EXCLUDED.hi, first_ts = EXCLUDED.first_ts,
                first_value = EXCLUDED.first_value, last_ts = EXCLUDED.last_ts, last_value = EXCLUDED.last_value"
}
log "rolling up the seeded hours"
roll_up_pending
log "VACUUM ANALYZE"
psql -c "VACUUM (ANALYZE)" 
psql -At -c "SELECT pg_size_pretty(pg_database_size('iot'))" >"$results/db_size.txt"
python3 "$here/prepare.py" --seed "$results/seed.json" --dir "$work" --binary "$server_bin"
cp "$work/targets.json" "$results/"
token=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["token"])' "$results/seed.json")
tenant=bench-big
chown -R postgres: "$work/pgbench" 2>/dev/null || true

# --- scenarios --------------------------------------------------------------------------------
# run_wrk NAME MODE [CONNS]: warm-up, then the measured run; its BENCH_RESULT line is kept.
run_wrk() {
    local name=$1 mode=$2 c=${3:-$conns} paths="$work/paths/$1.txt"
    [[ -f $paths ]] || paths=/dev/null
    local envs=(BENCH_TOKEN="$token" BENCH_MODE="$mode" BENCH_PATHS="$paths" BENCH_DEVICES="$work/devices.txt"
                BENCH_BULK_BASE="${bulk_base:-0}" BENCH_THREADS=1)
    env "${envs[@]}" wrk -t1 -c"$c" -d"${warm}s" --timeout 10s -s "$here/wrk.lua" "$base" >"$results/wrk_${name}.warm.txt" 2>&1 || true
    if [[ $mode == bulk ]]; then  # the measured run must not repeat the warm-up's instants
        bulk_base=$(( bulk_base - 200000 )); envs[4]=BENCH_BULK_BASE=$bulk_base
    fi
    local t0; t0=$(date +%s.%N)
    env "${envs[@]}" wrk -t1 -c"$c" -d"${secs}s" --timeout 10s --latency -s "$here/wrk.lua" "$base" >"$results/wrk_${name}.txt" 2>&1 || true
    echo "$name $t0 $(date +%s.%N)" >>"$results/windows.txt"  # the measured run's wall-clock span
    printf '  %-26s %s\n' "$name" "$(grep BENCH_RESULT "$results/wrk_${name}.txt" | cut -d' ' -f2- || echo FAILED)" >&2
}
# run_pgbench NAME [TAG] [WARM]: every file of the scenario, picked at random per transaction,
# after WARM seconds of warm-up (default pg_warm).
run_pgbench() {
    local name=$1 tag=${2:-} files=() pw=${3:-$pg_warm}
    for f in "$work/pgbench/$name"/*.sql; do files+=(-f "$f"); done
    if (( pw > 0 )); then
        "${as_pg[@]}" "$pgbench" -n -M prepared -c "$pool" -j "$(( pool < 2 ? 1 : 2 ))" -T "$pw" -h 127.0.0.1 -p "$pg_port" \
            -U postgres -D tenant=$tenant "${files[@]}" iot >/dev/null 2>&1 || true
    fi
    "${as_pg[@]}" "$pgbench" -n -M prepared -c "$pool" -j "$(( pool < 2 ? 1 : 2 ))" -T "$pg_secs" -h 127.0.0.1 -p "$pg_port" \
        -U postgres -D tenant=$tenant "${files[@]}" iot >"$results/pgbench_${name}${tag}.txt" 2>&1 || true
    printf '  %-26s %s\n' "pgbench $name$tag" "$(grep -E '^tps' "$results/pgbench_${name}${tag}.txt" | head -1 || echo FAILED)" >&2
}
warm_calls() {  # 20 sequential calls before the measured run
    for _ in $(seq 20); do curl -fs -o /dev/null -H "Authorization: Bearer $token" "$base$(head -1 "$work/paths/$1.txt")" || true; done
}

log "HTTP scenarios (wrk -t1 -c$conns, ${warm}s warm-up + ${secs}s)"
run_wrk device_get get
run_wrk customer_group_list get
run_wrk group_list get
run_wrk group_detail_small get
run_wrk group_detail_large get
run_wrk group_alerts get
# Issue 17: a dynamic group (every device, by label), a tree (a root over the 10 x 1,000 groups) with
# its descendants, and the device list filtered by that label (a page of 100, then every match).
run_wrk group_alerts_dynamic get
run_wrk group_alerts_tree get
run_wrk device_list_label get
run_wrk device_list_label_all get
warm_calls group_readings_small; run_wrk group_readings_small get
warm_calls group_readings_large; run_wrk group_readings_large get
run_wrk device_readings get
log "pgbench references (-M prepared -c $pool, the same statements in a tenant-bound transaction)"
for s in device_get group_list group_detail_small group_detail_large group_detail_dynamic group_readings_small group_readings_large device_readings; do
    run_pgbench "$s"
done

log "RLS cost: the same scenarios with row-level security disabled on every table (bench only)"
rls_tables=(devices device_groups device_group_members readings latest_readings maintenance_windows tenant_revisions
            reading_rollups_hour reading_rollups_pending)
for t in "${rls_tables[@]}"; do psql -c "ALTER TABLE $t DISABLE ROW LEVEL SECURITY"; done
for s in device_get group_list group_readings_large; do
    cp "$results/wrk_$s.txt" "$results/wrk_$s.rls_on.txt"
    run_wrk "$s" get
    mv "$results/wrk_$s.txt" "$results/wrk_$s.norls.txt"; mv "$results/wrk_$s.rls_on.txt" "$results/wrk_$s.txt"
done
run_pgbench device_get .norls
for t in "${rls_tables[@]}"; do psql -c "ALTER TABLE $t ENABLE ROW LEVEL SECURITY"; done

# The views the service keeps make repeated reads of unchanged data cheap; these runs show the
# cost of reading PostgreSQL every time (as when the tenant is written to continuously).
unkept=(group_detail_large group_alerts group_alerts_dynamic group_alerts_tree group_readings_small group_readings_large)
run_unkept() {  # run_unkept [TAG]
    stop_server; start_server 0
    for s in "${unkept[@]}"; do
        cp "$work/paths/$s.txt" "$work/paths/${s}_unkept${1:-}.txt"
        [[ $s == group_readings_* ]] && warm_calls "${s}_unkept${1:-}"
        run_wrk "${s}_unkept${1:-}" get
    done
    stop_server; start_server
}
log "without kept views (IOT_GROUP_VIEWS_MB=0): every request reads PostgreSQL"
run_unkept

log "EXPLAIN (ANALYZE, BUFFERS)"
psql -f "$work/explain.sql" >"$results/explain.txt" 2>&1 || true

# Ingest while reading: a writer sends readings of random devices of the large tenant, stamped
# now, at a steady pace (about 1% crossing a threshold) while wrk measures the reads the kept
# views serve; every write moves the tenant's revision, so these are the reads of a live tenant.
# The writer runs through the five warm-ups and measured runs, then is told to stop (its own
# --duration bounds it should the signal never come).
ingest_rate=${BENCH_INGEST_RATE:-2000}
ingest_reads=(device_get group_alerts group_alerts_dynamic group_alerts_tree device_list_label group_detail_large
              group_detail_small group_list)
log "ingest while reading: a writer at $ingest_rate readings/s (batches of 100) under ${#ingest_reads[@]} read scenarios"
python3 "$here/writer.py" --base "$base" --seed "$results/seed.json" --rate "$ingest_rate" --batch 100 \
    --duration $(( ${#ingest_reads[@]} * (warm + secs + 3) + 30 )) \
    --out "$results/writer.json" --log "$results/writer_batches.txt" &
writer_pid=$!
sleep 2  # the writer at its pace (and the kept views stale) before the first warm-up
for s in "${ingest_reads[@]}"; do
    cp "$work/paths/$s.txt" "$work/paths/${s}_ingest.txt"
    run_wrk "${s}_ingest" get
done
kill -TERM "$writer_pid" 2>/dev/null || true
wait "$writer_pid" || echo "  writer failed (see its output above)" >&2
writer_pid=""
# The peak so far of the server that took the phase (stop_server records it again at its end).
grep -E 'VmHWM|VmRSS' "/proc/$server_pid/status" >"$results/server_mem.after_ingest_phase.txt"

log "ingest scenarios (they add readings, so they run after every read and its reference)"
run_wrk single_ingest single
# Bulk: 10,000 new readings a request at instants from 15 days back (never overlapping the seeded
# 7 days, nor the copy reference below).
bulk_base=$(( $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["now"])' "$results/seed.json") - 15 * 86400 ))
bulk_start_base=$bulk_base
run_wrk bulk_ingest bulk "$bulk_conns"

run_pgbench single_ingest

log "COPY reference (server-side COPY into an unlogged staging table, then INSERT ... SELECT)"
bulk_rows=$(python3 -c '
import re,sys
m = re.search(r"requests=(\d+)", open(sys.argv[1]).read())
print(int(m.group(1)) * 10000 if m else 100000)' "$results/wrk_bulk_ingest.txt")
(( bulk_rows > 0 )) || bulk_rows=100000
python3 "$here/prepare.py" --seed "$results/seed.json" --dir "$work" --copy-rows "$bulk_rows" \
    --copy-base $(( bulk_start_base - 4 * 86400 ))
chown postgres: "$work/copy.csv" 2>/dev/null || true
psql >"$results/copy.txt" 2>&1 <<SQL
\timing on
CREATE UNLOGGED TABLE readings_staging (tenant_id text, device_id uuid, ts timestamptz, value float8);
COPY readings_staging FROM '$work/copy.csv' WITH (FORMAT csv);
INSERT INTO readings (tenant_id, device_id, ts, value) SELECT tenant_id, device_id, ts, value FROM readings_staging;
DROP TABLE readings_staging;
SQL
echo "rows=$bulk_rows" >>"$results/copy.txt"
grep -E '^(Time|rows)' "$results/copy.txt" | tr '\n' ' ' >&2; echo >&2

log "twice the readings: the seeded 7 days copied 7 days further back (SQL, as owner), then group detail again"
psql -c "INSERT INTO readings (tenant_id, device_id, ts, value)
         SELECT tenant_id, device_id, ts - interval '7 days', value FROM readings
         WHERE ts > to_timestamp($(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["now"] - d["days"]*86400)' "$results/seed.json"))
         ON CONFLICT DO NOTHING" >"$results/double.txt"
psql -c "VACUUM (ANALYZE) readings"
psql -c "CHECKPOINT"
psql -At -c "SELECT count(*) FROM readings" >"$results/readings_after_double.txt"
cp "$results/wrk_group_detail_large.txt" "$results/wrk_group_detail_large.first.txt"
run_wrk group_detail_large get
mv "$results/wrk_group_detail_large.txt" "$results/wrk_group_detail_large.double.txt"
mv "$results/wrk_group_detail_large.first.txt" "$results/wrk_group_detail_large.txt"
unkept=(group_detail_large)
run_unkept .double

# --- buckets at a chart's density (issue 16) ---------------------------------------------------
# The issue's scenario: the 10,000-device group at one reading a minute over the 24 bucketed
# hours (14.4 million readings). Seeded in SQL as the owner, as HTTP would take far longer: the
# group's readings in those hours are replaced by one a minute (FK checks off for the insert:
# every device exists), the hours marked pending as an ingest marks them, then rolled up with the
# statement of the service's job. Last, as it changes the readings every other scenario reads.
# Both the service and its references read the same rows in the same run.
read -r hour_start hour_end group_id < <(python3 -c '
import json, sys
seed, targets = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
end = seed["now"] // 3600 * 3600
print(end - 86400, end, targets["largest"]["id"])' "$results/seed.json" "$results/targets.json")
log "buckets at a chart's density: the largest group at one reading a minute over 24 h (SQL), rolled up"
psql >"$results/dense.txt" 2>&1 <<SQL
\timing on
SET session_replication_role = replica;
DELETE FROM readings r USING device_group_members m
 WHERE m.tenant_id = '$tenant' AND m.group_id = '$group_id' AND r.tenant_id = m.tenant_id
   AND r.device_id = m.device_id AND r.ts >= to_timestamp($hour_start) AND r.ts < to_timestamp($hour_end);
INSERT INTO readings (tenant_id, device_id, ts, value)
SELECT '$tenant', m.device_id, t, round((20 + 5 * sin(date_part('epoch', t) / 3600.0 + m.k))::numeric, 3)::float8
FROM generate_series(to_timestamp($hour_start), to_timestamp($hour_end) - interval '1 minute', interval '1 minute') AS t
CROSS JOIN (SELECT device_id, row_number() OVER (ORDER BY device_id) % 100 AS k FROM device_group_members
            WHERE tenant_id = '$tenant' AND group_id = '$group_id') m;
RESET session_replication_role;
INSERT INTO reading_rollups_pending (tenant_id, bucket)
SELECT '$tenant', h FROM generate_series(to_timestamp($hour_start), to_timestamp($hour_end) - interval '1 hour',
                                         interval '1 hour') AS h
ON CONFLICT DO NOTHING;
SQL
grep -E '^(Time|DELETE|INSERT)' "$results/dense.txt" | tr '\n' ' ' >&2; echo >&2
t_roll=$(date +%s.%N)
roll_up_pending
python3 -c 'import sys; print(f"{float(sys.argv[2]) - float(sys.argv[1]):.1f}")' "$t_roll" "$(date +%s.%N)" >"$results/dense_rollup_secs.txt"
psql -c "VACUUM (ANALYZE) readings, reading_rollups_hour"
psql -At -c "SELECT count(*) FROM readings r JOIN device_group_members m ON m.tenant_id = r.tenant_id
               AND m.device_id = r.device_id AND m.group_id = '$group_id'
             WHERE r.tenant_id = '$tenant' AND r.ts >= to_timestamp($hour_start) AND r.ts < to_timestamp($hour_end)" \
    >"$results/dense_readings.txt"
psql -At -c "SELECT count(*) FROM reading_rollups_hour WHERE tenant_id = '$tenant'
               AND bucket >= to_timestamp($hour_start) AND bucket < to_timestamp($hour_end)" >"$results/dense_rollups.txt"
log "bucket scenarios (wrk -t1 -c$conns) and their references: rollups, and the same answer from raw readings"
warm_calls bucket_group_hourly; run_wrk bucket_group_hourly get
warm_calls bucket_device_year; run_wrk bucket_device_year get
run_pgbench bucket_group_hourly
run_pgbench bucket_device_year
# Seconds a transaction: no warm-up (the VACUUM read the table; a warm-up would cost a query).
run_pgbench bucket_group_hourly_raw "" 0
psql -f "$work/explain_buckets.sql" >>"$results/explain.txt" 2>&1 || true

# --- peak memory, then the report --------------------------------------------------------------
stop_server
log "report"
{
    echo "scale=$scale"
    echo "conns=$conns"
    echo "bulk_conns=$bulk_conns"
    echo "ingest_rate=$ingest_rate"
    echo "pool=$pool"
    echo "warm=$warm"
    echo "secs=$secs"
    echo "pg_secs=$pg_secs"
    echo "binary=$([[ -n "${BENCH_BIN:-}" ]] && echo "$BENCH_BIN (BENCH_BIN, not rebuilt)" || echo "release build (target/release/iot-api)")"
    echo "build_secs=$build_secs"
    echo "pg_version=$("$bin/postgres" --version)"
    echo "wrk_version=$(wrk -v 2>&1 | head -1 | sed "s/ Copyright.*//")"
    echo "shared_buffers=${sb}MB"
    echo "commit=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- crates migrations 2>/dev/null || echo '-dirty')"
    echo "nproc=$(nproc)"
    echo "mem=$(free -m | awk '/Mem:/ {print $2}') MiB"
    echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
    echo "kernel=$(uname -r)"
    echo "loadavg=$load_start at start, $(cut -d' ' -f1-3 /proc/loadavg) at end (1/5/15 min)"
    echo "total_secs=$(( $(date +%s) - t_start ))"
} >"$results/meta.txt"
python3 "$here/report.py" --results "$results" --out "$root/BENCHMARKS.md"
log "done: BENCHMARKS.md (raw output in target/bench/last)"
