#!/usr/bin/env python3
"""Writes the per-scenario inputs of the benchmark from seed.json (standard library only):

  paths/<scenario>.txt    request paths for wrk (one per line; wrk.lua picks one at random)
  devices.txt             the big tenant's device ids (bulk ingest bodies)
  pgbench/<scenario>/*.sql the SQL each endpoint runs, in the service's own transaction shape
                          (BEGIN; role + tenant via set_config(..., true); statements; COMMIT)
  explain.sql             EXPLAIN (ANALYZE, BUFFERS) of the group-detail and group-readings SQL
  copy.csv                rows for the server-side COPY reference (--copy-rows N)

The statements come from the service itself (`iot-api sql-catalog`, a JSON object of name to
SQL built from the adapter's own constants), so the references run exactly the SQL the service
runs.

Usage: prepare.py --seed seed.json --dir WORKDIR --binary target/release/iot-api
       prepare.py --seed seed.json --dir WORKDIR --copy-rows N --copy-base EPOCH
"""

import argparse
import datetime as dt
import json
import os
import random
import re
import subprocess

# The statement and lock timeouts the binding sets: the service's default, 90% of its 5 s
# request timeout (IOT_DB_STATEMENT_TIMEOUT_MS).
STATEMENT_TIMEOUT = "'4500ms'"

# Filled from `iot-api sql-catalog` by main(); names as the adapter's catalog gives them.
SQL = {}


def load_catalog(binary):
    """The statements of `iot-api sql-catalog`, by name."""
    out = subprocess.run([binary, "sql-catalog"], check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def bind(sql, *params):
    """`sql` with `$1`, `$2`, ... replaced by the given SQL literals."""
    def param(m):
        n = int(m.group(1))
        if n > len(params):
            raise SystemExit(f"prepare.py: ${n} has no value in: {sql}")
        return params[n - 1]
    return re.sub(r"\$(\d+)", param, sql)


def q(s):
    return "'" + s.replace("'", "''") + "'"


def iso(t):
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def tx(*steps, timeout=STATEMENT_TIMEOUT):
    """A pgbench transaction running the endpoint's statements: BEGIN, the tenant binding, the
    statements and COMMIT, each in its own round trip, as pgbench runs a script. (The service
    pipelines them: fewer round trips is one of its means, not the reference's. A step that is a
    list is what the service sends as one pipeline.)"""
    lines = ["BEGIN;", bind(SQL["BIND_TENANT"], ":tenant", timeout) + ";"]
    for step in steps:
        for statement in step if isinstance(step, list) else [step]:
            lines.append(statement + ";")
    if lines[-1] != "COMMIT;":
        lines.append("COMMIT;")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--binary", help="the iot-api binary, whose `sql-catalog` gives the statements")
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
        # Not the year device: its readings every 10 minutes reach back past copy-base.
        others = [x for x in devices if x != seed.get("year_device")]
        with open(os.path.join(d, "copy.csv"), "w") as f:
            n, j = 0, 0
            while n < args.copy_rows:
                ts = iso(args.copy_base - j)
                for k, dev in enumerate(others):
                    if n >= args.copy_rows:
                        break
                    f.write(f"{seed['tenant']},{dev},{ts},{20 + k % 7}\n")
                    n += 1
                j += 1
        return

    if not args.binary:
        ap.error("--binary is required (except with --copy-rows)")
    SQL.update(load_catalog(args.binary))

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
    # Issue 17: the alerts of the dynamic group (every device, by label) and of the tree root with
    # its descendants (10 x 1,000 at full scale); the device list filtered by the same label, a
    # page of 100 (the list has no default limit: without one it answers every match, measured too
    # for the record) -- X-Total-Count still counts every match.
    dyn, tree = seed.get("dynamic_group"), seed.get("tree_root")
    if dyn:
        labels = "&".join(f"label={k}:{v}" for k, v in dyn["label"].items())
        paths["group_alerts_dynamic"] = [f"/api/groups/{dyn['id']}/alerts"]
        paths["device_list_label"] = [f"/api/devices?{labels}&limit=100"]
        paths["device_list_label_all"] = [f"/api/devices?{labels}"]
    if tree:
        paths["group_alerts_tree"] = [f"/api/groups/{tree['id']}/alerts?include_descendants=true"]
    # Buckets (issue 16): hourly buckets of the largest group over the last 24 whole hours (top=1000,
    # the most series an answer holds), daily buckets of the year device over the last 365 days.
    hour_end = seed["now"] // 3600 * 3600
    hour_start = hour_end - 24 * 3600
    day_end = seed["now"] // 86400 * 86400
    day_start = day_end - 365 * 86400
    year_device = seed.get("year_device", devices[0])
    paths["bucket_group_hourly"] = [f"/api/groups/{largest['id']}/readings?interval=1h&top=1000"
                                    f"&start_time={iso(hour_start)}&end_time={iso(hour_end)}"]
    paths["bucket_device_year"] = [f"/api/devices/{year_device}/readings?interval=1d"
                                   f"&start_time={iso(day_start)}&end_time={iso(day_end)}"]
    for name, lines in paths.items():
        write(f"{d}/paths/{name}.txt", "\n".join(lines) + "\n")

    # pgbench scripts: one file per sampled id (pgbench picks a file at random per transaction),
    # tenant as a parameter (-D tenant=...), ids as literals. Steps in the adapter's order.
    T = ":tenant"
    # No name filter, no limit, from the first row.
    list_page = bind(SQL["GROUP_LIST_PAGE"], T, "NULL", "NULL", "0")
    list_count = bind(SQL["GROUP_LIST_COUNT"], T, "NULL")
    # One reading at now(), as the single-reading endpoint sends it.
    ingest_one = bind(SQL["INGEST"], T, "ARRAY[{id}]::uuid[]", "ARRAY[clock_timestamp()]::timestamptz[]",
                      "ARRAY[random() * 5 + 20]::float8[]")
    # The device's state kept with it (a reading that changes no status, as most do).
    keep_one = bind(SQL["KEEP_STATE"], T, "ARRAY[{id}]::uuid[]", "ARRAY[clock_timestamp()]::timestamptz[]",
                    "ARRAY[random() * 5 + 20]::float8[]", "ARRAY['normal']::text[]",
                    "ARRAY[clock_timestamp()]::timestamptz[]")

    def lock_and_load(x):
        # The pending rollup marks held and the devices locked, then their state and open
        # alerts: one pipeline in the service.
        ids = f"ARRAY[{q(x)}]::uuid[]"
        hours = "ARRAY[date_trunc('hour', clock_timestamp(), 'UTC')]::timestamptz[]"
        return [bind(SQL["HOLD_PENDING"], T, hours), bind(SQL["LOCK_DEVICES"], T, ids),
                bind(SQL["DEVICE_STATES"], T, ids), bind(SQL["OPEN_ALERTS"], T, ids)]

    def ts_array(instants):
        return "ARRAY[" + ",".join(q(iso(t)) for t in instants) + "]::timestamptz[]"

    def bucket_group(raw):
        # The group's hourly buckets: the members' rollups (or, `raw`, every reading), COMMIT.
        g = q(largest["id"]) + "::uuid"
        bounds = ts_array(range(hour_start, hour_end + 1, 3600))
        start, end = q(iso(hour_start)) + "::timestamptz", q(iso(hour_end)) + "::timestamptz"
        edges = (f"ARRAY[{start}]", f"ARRAY[{end}]") if raw else ("ARRAY[]::timestamptz[]",) * 2
        sql = SQL["GROUP_BUCKETS_RAW" if raw else "GROUP_BUCKETS"]
        # The raw aggregation outlasts the service's deadline at a chart's density (the service
        # could not answer it at all): its reference runs without one, to have a rate to compare.
        return tx([bind(SQL["FIND_GROUP"], T, g), SQL["CUSTOM_PLANS"],
                   bind(sql, T, g, bounds, start, end, *edges, "NULL::uuid[]", "1000", "false", start),
                   "COMMIT"], timeout="'0'" if raw else STATEMENT_TIMEOUT)

    def bucket_device():
        dev = q(year_device) + "::uuid"
        bounds = ts_array(range(day_start, day_end + 1, 86400))
        start, end = q(iso(day_start)) + "::timestamptz", q(iso(day_end)) + "::timestamptz"
        return tx([bind(SQL["DEVICE_EXISTS"], T, dev), SQL["CUSTOM_PLANS"],
                   bind(SQL["DEVICE_BUCKETS"], T, dev, bounds, start, end, "ARRAY[]::timestamptz[]",
                        "ARRAY[]::timestamptz[]"), "COMMIT"])

    def detail(gid):
        # The detail statements as the service pipelines them, then COMMIT.
        g = q(gid) + "::uuid"
        return tx([bind(SQL["REVISION"], T), bind(SQL["GROUP_BY_ID"], T, g), bind(SQL["LIVE_WINDOWS"], T),
                   SQL["CUSTOM_PLANS"], bind(SQL["MEMBERS"], T, g), bind(SQL["WINDOW_MEMBERSHIPS"], T, g)],
                  "COMMIT")

    def readings(gid):
        # Whether the group exists, its readings and COMMIT, pipelined.
        g = q(gid) + "::uuid"
        return tx([bind(SQL["FIND_GROUP"], T, g), SQL["CUSTOM_PLANS"],
                   bind(SQL["GROUP_READINGS"], T, g, since, "1000", "NULL", "NULL::timestamptz", "NULL::uuid", "0"), "COMMIT"])

    scripts = {
        "device_get": [tx([bind(SQL["GET_DEVICE"], T, q(x) + "::uuid"), "COMMIT"]) for x in sample],
        "group_list": [tx([list_page, list_count, "COMMIT"])],
        "group_detail_small": [detail(smallest["id"])],
        "group_detail_large": [detail(largest["id"])],
        # The dynamic group's members are rows as a static group's: the same statements.
        **({"group_detail_dynamic": [detail(dyn["id"])]} if dyn else {}),
        "group_readings_small": [readings(smallest["id"])],
        "group_readings_large": [readings(largest["id"])],
        "device_readings": [tx([bind(SQL["DEVICE_EXISTS"], T, q(x) + "::uuid"),
                                bind(SQL["DEVICE_READINGS"], T, q(x) + "::uuid", since, "100", "NULL", "NULL::timestamptz", "0"), "COMMIT"])
                            for x in sample],
        "bucket_group_hourly": [bucket_group(False)],
        "bucket_group_hourly_raw": [bucket_group(True)],
        "bucket_device_year": [bucket_device()],
        "single_ingest": [tx(lock_and_load(x), [ingest_one.replace("{id}", q(x)), keep_one.replace("{id}", q(x))],
                             "COMMIT") for x in sample],
    }
    for name, files in scripts.items():
        for k, text in enumerate(files):
            write(f"{d}/pgbench/{name}/{k:02d}.sql", text)

    # EXPLAIN (ANALYZE, BUFFERS), as the service runs them: as iot_app, tenant set (RLS applies).
    def explain(title, sql):
        return (f"\\echo '### {title}'\nBEGIN;\n"
                f"SELECT set_config('role', 'iot_app', true), set_config('app.tenant_id', {tenant_lit}, true) \\g /dev/null\n"
                f"EXPLAIN (ANALYZE, BUFFERS) {sql};\nROLLBACK;\n")

    big, small = q(largest["id"]) + "::uuid", q(smallest["id"]) + "::uuid"
    ex = [
        explain(f"group members (members_sql), {largest['size']}-device group", bind(SQL["MEMBERS"], tenant_lit, big)),
        explain(f"window memberships (WINDOW_MEMBERSHIPS), {largest['size']}-device group",
                bind(SQL["WINDOW_MEMBERSHIPS"], tenant_lit, big)),
        explain(f"group members (members_sql), {smallest['size']}-device group", bind(SQL["MEMBERS"], tenant_lit, small)),
        explain(f"group readings (GROUP_READINGS, hours=24, limit=1000), {largest['size']}-device group",
                bind(SQL["GROUP_READINGS"], tenant_lit, big, since, "1000", "NULL", "NULL::timestamptz", "NULL::uuid", "0")),
        explain(f"group readings (GROUP_READINGS, hours=24, limit=1000), {smallest['size']}-device group",
                bind(SQL["GROUP_READINGS"], tenant_lit, small, since, "1000", "NULL", "NULL::timestamptz", "NULL::uuid", "0")),
        explain("group list page (list_sql)", list_page.replace(":tenant", tenant_lit)),
    ]
    write(f"{d}/explain.sql", "\n".join(ex))
    # The bucketed group read, explained in the run's last phase (at a chart's density).
    g = q(largest["id"]) + "::uuid"
    hours = "ARRAY[" + ",".join(q(iso(t)) for t in range(hour_start, hour_end + 1, 3600)) + "]::timestamptz[]"
    start, end = q(iso(hour_start)) + "::timestamptz", q(iso(hour_end)) + "::timestamptz"
    write(f"{d}/explain_buckets.sql", explain(
        f"hourly buckets (GROUP_BUCKETS, 24 h, top=1000), {largest['size']}-device group at one reading a minute",
        bind(SQL["GROUP_BUCKETS"], tenant_lit, g, hours, start, end, "ARRAY[]::timestamptz[]",
             "ARRAY[]::timestamptz[]", "NULL::uuid[]", "1000", "false", start)))
    json.dump({"largest": largest, "smallest": smallest, "sample": sample, "dynamic": dyn, "tree": tree},
              open(f"{d}/targets.json", "w"))


if __name__ == "__main__":
    main()
