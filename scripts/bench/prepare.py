#!/usr/bin/env python3
"""Writes the per-scenario inputs of the benchmark from seed.json (standard library only):

  paths/<scenario>.txt    request paths for wrk (one per line; wrk.lua picks one at random)
  devices.txt             the big tenant's device ids (bulk ingest bodies)
  pgbench/<scenario>/*.sql the SQL each endpoint runs, in the service's own transaction shape
                          (BEGIN; role + tenant via set_config(..., true); statements; COMMIT)
  explain.sql             EXPLAIN (ANALYZE, BUFFERS) of the group-detail and group-readings SQL
  copy.csv                rows for the server-side COPY reference (--copy-rows N)

The SQL is replicated from crates/postgres/src/*.rs (members_sql, GROUP_READINGS, ...): keep in
step when those change.

Usage: prepare.py --seed seed.json --dir WORKDIR [--copy-rows N --copy-base EPOCH]
"""

import argparse
import datetime as dt
import json
import os
import random

DEVICE_COLUMNS = ("d.id, d.name, d.unit, d.status, d.site_id, d.device_type, "
                  "d.threshold_critical_lower, d.threshold_warning_lower, d.threshold_warning_upper, "
                  "d.threshold_critical_upper, d.created_at, d.updated_at, d.created_by, d.updated_by")
WINDOW_COLUMNS = ("w.window_id, w.name, w.starts_at, w.ends_at, w.recurring, w.site_ids, "
                  "w.device_types, w.group_ids, w.enabled, w.created_at, w.updated_at, w.created_by, w.updated_by")
GROUP_COLUMNS = ("g.id, g.group_id, g.name, g.description, g.created_at, g.updated_at, g.created_by, "
                 "g.updated_by, (SELECT count(*) FROM device_group_members m WHERE m.tenant_id = "
                 "g.tenant_id AND m.group_id = g.id) AS member_count")
NAME_FILTER = "({p}::text IS NULL OR strpos(lower({col} COLLATE \"C\"), lower({p}::text COLLATE \"C\")) > 0)"

# crates/postgres/src/lib.rs tenant_transaction
BIND = "SELECT set_config('role', 'iot_app', true), set_config('app.tenant_id', :tenant, true);"


def members_sql(tenant, group):
    # crates/postgres/src/groups.rs members_sql()
    return (f"SELECT {DEVICE_COLUMNS}, l.ts AS latest_ts, l.value AS latest_value, "
            "ARRAY(SELECT g.group_id FROM device_group_members gm "
            "JOIN device_groups g ON g.tenant_id = gm.tenant_id AND g.id = gm.group_id "
            "WHERE gm.tenant_id = d.tenant_id AND gm.device_id = d.id AND g.group_id IN ( "
            f"SELECT unnest(w.group_ids) FROM maintenance_windows w "
            f"WHERE w.tenant_id = {tenant} AND w.enabled AND w.group_ids IS NOT NULL)) AS window_groups "
            "FROM device_group_members m "
            "JOIN devices d ON d.tenant_id = m.tenant_id AND d.id = m.device_id "
            "LEFT JOIN latest_readings l ON l.tenant_id = d.tenant_id AND l.device_id = d.id "
            f"WHERE m.tenant_id = {tenant} AND m.group_id = {group} ORDER BY d.name COLLATE \"C\"")


def group_readings_sql(tenant, group, since, limit):
    # crates/postgres/src/groups.rs GROUP_READINGS (until = NULL)
    return ("SELECT d.id, d.name, d.unit, r.ts, r.value "
            "FROM device_group_members m "
            "JOIN devices d ON d.tenant_id = m.tenant_id AND d.id = m.device_id "
            "CROSS JOIN LATERAL (SELECT ts, value FROM readings r "
            f"WHERE r.tenant_id = m.tenant_id AND r.device_id = m.device_id AND r.ts >= {since} "
            "AND (NULL::timestamptz IS NULL OR r.ts < NULL) "
            f"ORDER BY r.ts DESC LIMIT {limit}) r "
            f"WHERE m.tenant_id = {tenant} AND m.group_id = {group} "
            f"ORDER BY r.ts DESC, d.id LIMIT {limit}")


def q(s):
    return "'" + s.replace("'", "''") + "'"


def iso(t):
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def tx(*statements, pipeline=False):
    body = list(statements)
    if pipeline:
        body = ["\\startpipeline"] + body + ["\\endpipeline"]
    return "\n".join(["BEGIN;", BIND] + body + ["COMMIT;"]) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--copy-rows", type=int, default=0)
    ap.add_argument("--copy-base", type=int, default=0)
    ap.add_argument("--scripts", type=int, default=16, help="device ids sampled per scenario")
    args = ap.parse_args()
    seed = json.load(open(args.seed))
    d = args.dir
    rnd = random.Random(42)
    devices = seed["devices"]
    sample = rnd.sample(devices, min(args.scripts, len(devices)))
    groups = seed["groups"]
    sizes = sorted(groups, key=int)
    largest, smallest = groups[sizes[-1]][0], groups[sizes[0]][0]
    tenant_lit = q(seed["tenant"])
    since = q(iso(seed["now"] - 24 * 3600)) + "::timestamptz"

    def write(path, text):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)

    if args.copy_rows:
        # Same shape as the HTTP bulk bodies: the big tenant's devices, distinct instants going
        # back from copy-base, so the rows are new to the same indexed table.
        with open(os.path.join(d, "copy.csv"), "w") as f:
            n, j = 0, 0
            while n < args.copy_rows:
                ts = iso(args.copy_base - j)
                for k, dev in enumerate(devices):
                    if n >= args.copy_rows:
                        break
                    f.write(f"{seed['tenant']},{dev},{ts},{20 + k % 7}\n")
                    n += 1
                j += 1
        return

    # wrk paths
    write(f"{d}/devices.txt", "\n".join(devices) + "\n")
    paths = {
        "device_get": [f"/api/devices/{x}" for x in sample],
        "customer_group_list": ["/customer/device-groups"],
        "group_list": ["/api/groups"],
        "group_detail_small": [f"/api/groups/{smallest['id']}"],
        "group_detail_large": [f"/api/groups/{largest['id']}"],
        "group_alerts": [f"/api/groups/{largest['id']}/alerts"],
        "group_readings_small": [f"/api/groups/{smallest['id']}/readings?hours=24&limit=1000"],
        "group_readings_large": [f"/api/groups/{largest['id']}/readings?hours=24&limit=1000"],
        "device_readings": [f"/api/devices/{x}/readings?hours=24&limit=100" for x in sample],
        "single_ingest": [f"/api/devices/{x}/readings" for x in sample],
    }
    for name, lines in paths.items():
        write(f"{d}/paths/{name}.txt", "\n".join(lines) + "\n")

    # pgbench scripts: one file per sampled id (pgbench picks a file at random per transaction),
    # tenant as a parameter (-D tenant=...), ids as literals.
    T = ":tenant"
    get_device = f"SELECT {DEVICE_COLUMNS} FROM devices d WHERE d.tenant_id = {T} AND d.id = {{id}}::uuid;"
    list_page = (f"SELECT {GROUP_COLUMNS} FROM device_groups g WHERE g.tenant_id = {T} AND "
                 + NAME_FILTER.format(p="NULL", col="g.name")
                 + " ORDER BY g.name COLLATE \"C\" LIMIT NULL OFFSET 0;")
    list_count = (f"SELECT count(*) FROM device_groups g WHERE g.tenant_id = {T} AND "
                  + NAME_FILTER.format(p="NULL", col="g.name") + ";")
    find = "SELECT id FROM device_groups WHERE tenant_id = :tenant AND id = {id}::uuid;"
    get_by_id = f"SELECT {GROUP_COLUMNS} FROM device_groups g WHERE g.tenant_id = {T} AND g.id = {{id}}::uuid;"
    live_windows = (f"SELECT {WINDOW_COLUMNS} FROM maintenance_windows w WHERE w.tenant_id = {T} AND w.enabled "
                    "AND (w.ends_at IS NULL OR w.ends_at > now());")
    dev_exists = "SELECT 1 FROM devices WHERE tenant_id = :tenant AND id = {id}::uuid;"
    dev_readings = ("SELECT ts, value FROM readings WHERE tenant_id = :tenant AND device_id = {id}::uuid "
                    f"AND ts >= {since} AND (NULL::timestamptz IS NULL OR ts < NULL) ORDER BY ts DESC LIMIT 100;")
    lock_devices = ("SELECT id FROM devices WHERE tenant_id = :tenant AND id = ANY(ARRAY[{id}]::uuid[]) "
                    "FOR KEY SHARE;")
    # crates/postgres/src/readings.rs INGEST, one reading at now() (as the single-reading endpoint)
    ingest = ("WITH batch AS ( SELECT * FROM unnest(ARRAY[{id}]::uuid[], ARRAY[clock_timestamp()]::timestamptz[], "
              "ARRAY[random() * 5 + 20]::float8[]) AS b(device_id, ts, value) ), stored AS ( "
              "INSERT INTO readings (tenant_id, device_id, ts, value) SELECT :tenant, device_id, ts, value FROM batch "
              "ON CONFLICT (tenant_id, device_id, ts) DO UPDATE SET value = EXCLUDED.value RETURNING 1 ), latest AS ( "
              "INSERT INTO latest_readings (tenant_id, device_id, ts, value) "
              "SELECT DISTINCT ON (device_id) :tenant, device_id, ts, value FROM batch ORDER BY device_id, ts DESC "
              "ON CONFLICT (tenant_id, device_id) DO UPDATE SET ts = EXCLUDED.ts, value = EXCLUDED.value "
              "WHERE latest_readings.ts <= EXCLUDED.ts ) SELECT count(*) FROM stored;")

    def detail(gid):
        # find_group, then the three load_detail queries pipelined, as the service does.
        i = q(gid)
        return "\n".join(["BEGIN;", BIND, find.format(id=i), "\\startpipeline",
                          get_by_id.format(id=i), members_sql(T, i + "::uuid") + ";", live_windows,
                          "\\endpipeline", "COMMIT;"]) + "\n"

    def readings(gid):
        i = q(gid)
        return tx(find.format(id=i), group_readings_sql(T, i + "::uuid", since, 1000) + ";")

    scripts = {
        "device_get": [tx(get_device.format(id=q(x))) for x in sample],
        "group_list": [tx(list_page, list_count, pipeline=True)],
        "group_detail_small": [detail(smallest["id"])],
        "group_detail_large": [detail(largest["id"])],
        "group_readings_small": [readings(smallest["id"])],
        "group_readings_large": [readings(largest["id"])],
        "device_readings": [tx(dev_exists.format(id=q(x)), dev_readings.format(id=q(x))) for x in sample],
        "single_ingest": [tx(lock_devices.format(id=q(x)), ingest.format(id=q(x))) for x in sample],
    }
    for name, files in scripts.items():
        for k, text in enumerate(files):
            write(f"{d}/pgbench/{name}/{k:02d}.sql", text)

    # EXPLAIN (ANALYZE, BUFFERS), as the service runs them: as iot_app, tenant set (RLS applies).
    def explain(title, sql):
        return (f"\\echo '### {title}'\nBEGIN;\n"
                f"SELECT set_config('role', 'iot_app', true), set_config('app.tenant_id', {tenant_lit}, true) \\g /dev/null\n"
                f"EXPLAIN (ANALYZE, BUFFERS) {sql};\nROLLBACK;\n")

    ex = [
        explain(f"group members (members_sql), {largest['size']}-device group",
                members_sql(tenant_lit, q(largest["id"]) + "::uuid")),
        explain(f"group members (members_sql), {smallest['size']}-device group",
                members_sql(tenant_lit, q(smallest["id"]) + "::uuid")),
        explain(f"group readings (GROUP_READINGS, hours=24, limit=1000), {largest['size']}-device group",
                group_readings_sql(tenant_lit, q(largest["id"]) + "::uuid", since, 1000)),
        explain(f"group readings (GROUP_READINGS, hours=24, limit=1000), {smallest['size']}-device group",
                group_readings_sql(tenant_lit, q(smallest["id"]) + "::uuid", since, 1000)),
        explain("group list page (list_sql)", list_page.replace(":tenant", tenant_lit).rstrip(";")),
    ]
    write(f"{d}/explain.sql", "\n".join(ex))
    json.dump({"largest": largest, "smallest": smallest, "sample": sample},
              open(f"{d}/targets.json", "w"))


if __name__ == "__main__":
    main()
