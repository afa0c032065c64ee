#!/usr/bin/env python3
"""Writes the per-scenario inputs of the benchmark from seed.json (standard library only):

  paths/<scenario>.txt    request paths for wrk (one per line; wrk.lua picks one at random)
  devices.txt             the big tenant's device ids (bulk ingest bodies)
  pgbench/<scenario>/*.sql the SQL each endpoint runs, in the service's own transaction shape
                          (BEGIN; role + tenant via set_config(..., true); statements; COMMIT)
  explain.sql             EXPLAIN (ANALYZE, BUFFERS) of the group-detail and group-readings SQL
  copy.csv                rows for the server-side COPY reference (--copy-rows N)

The statements are read from the adapter's source (crates/postgres/src/*.rs), so the references
run exactly the SQL the service runs; only the group list's page, built by a macro, is spelled
out here.

Usage: prepare.py --seed seed.json --dir WORKDIR [--copy-rows N --copy-base EPOCH]
"""

import argparse
import datetime as dt
import json
import os
import random

import re

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "crates", "postgres", "src")


def rust_literal(body):
    """The value of a Rust string literal's body: line continuations and escaped quotes."""
    body = re.sub(r"\\\n\s*", "", body)
    return body.replace('\\"', '"').replace("\\\\", "\\")


def rust_const(file, name):
    """`const NAME: &str = "...";` of the adapter's source file."""
    text = open(os.path.join(SRC, file)).read()
    m = re.search(r"const " + name + r': &str =\s*"((?:[^"\\]|\\.)*)";', text, re.S)
    if not m:
        raise SystemExit(f"prepare.py: const {name} not found in crates/postgres/src/{file}")
    return rust_literal(m.group(1))


def rust_format(file, fn):
    """The `format!` string of `fn NAME(...)`, with the column lists it interpolates filled in."""
    text = open(os.path.join(SRC, file)).read()
    m = re.search(r"fn " + fn + r"\(.*?format!\(\s*\"((?:[^\"\\]|\\.)*)\"", text, re.S)
    if not m:
        raise SystemExit(f"prepare.py: fn {fn} not found in crates/postgres/src/{file}")
    sql = rust_literal(m.group(1))
    sql = sql.replace("{DEVICE_COLUMNS}", DEVICE_COLUMNS).replace("{WINDOW_COLUMNS}", WINDOW_COLUMNS)
    return sql.replace("{lock}", "")


def bind(sql, *params):
    """`sql` with `$1`, `$2`, ... replaced by the given SQL literals."""
    return re.sub(r"\$(\d+)", lambda m: params[int(m.group(1)) - 1], sql)


DEVICE_COLUMNS = rust_const("devices.rs", "DEVICE_COLUMNS")
WINDOW_COLUMNS = rust_const("windows.rs", "WINDOW_COLUMNS")
# crates/postgres/src/groups.rs group_columns! (a macro: spelled out here)
GROUP_COLUMNS = ("g.id, g.group_id, g.name, g.description, g.created_at, g.updated_at, g.created_by, "
                 "g.updated_by, (SELECT count(*) FROM device_group_members m WHERE m.tenant_id = "
                 "g.tenant_id AND m.group_id = g.id) AS member_count")
NAME_FILTER = "({p}::text IS NULL OR strpos(lower({col} COLLATE \"C\"), lower({p}::text COLLATE \"C\")) > 0)"

BIND_TENANT = rust_const("lib.rs", "BIND_TENANT")
REVISION = rust_const("lib.rs", "REVISION")
CUSTOM_PLANS = rust_const("groups.rs", "CUSTOM_PLANS")
MEMBERS = rust_format("groups.rs", "members_sql")
WINDOW_MEMBERSHIPS = rust_const("groups.rs", "WINDOW_MEMBERSHIPS")
GROUP_BY_ID = "SELECT " + GROUP_COLUMNS + " FROM device_groups g WHERE g.tenant_id = $1 AND g.id = $2"
GROUP_READINGS = rust_const("groups.rs", "GROUP_READINGS")
FIND_GROUP = rust_const("groups.rs", "FIND_BY_ID")
LIVE_WINDOWS = rust_format("windows.rs", "live_windows_sql")
GET_DEVICE = rust_format("devices.rs", "get_sql")
DEVICE_EXISTS = rust_const("readings.rs", "DEVICE_EXISTS")
DEVICE_READINGS = rust_const("readings.rs", "DEVICE_READINGS")
LOCK_DEVICES = rust_const("groups.rs", "LOCK_DEVICES")
INGEST = rust_const("readings.rs", "INGEST")


def q(s):
    return "'" + s.replace("'", "''") + "'"


def iso(t):
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def tx(*steps):
    """A pgbench transaction running the endpoint's statements: BEGIN, the tenant binding, the
    statements and COMMIT, each in its own round trip, as pgbench runs a script. (The service
    pipelines them: fewer round trips is one of its means, not the reference's. A step that is a
    list is what the service sends as one pipeline.)"""
    lines = ["BEGIN;", bind(BIND_TENANT, ":tenant") + ";"]
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
    # tenant as a parameter (-D tenant=...), ids as literals. Steps in the adapter's order.
    T = ":tenant"
    list_page = (f"SELECT {GROUP_COLUMNS} FROM device_groups g WHERE g.tenant_id = {T} AND "
                 + NAME_FILTER.format(p="NULL", col="g.name")
                 + " ORDER BY g.name COLLATE \"C\" LIMIT NULL OFFSET 0")
    list_count = (f"SELECT count(*) FROM device_groups g WHERE g.tenant_id = {T} AND "
                  + NAME_FILTER.format(p="NULL", col="g.name"))
    # One reading at now(), as the single-reading endpoint sends it.
    ingest_one = bind(INGEST, T, "ARRAY[{id}]::uuid[]", "ARRAY[clock_timestamp()]::timestamptz[]",
                      "ARRAY[random() * 5 + 20]::float8[]")

    def detail(gid):
        # The detail statements as the service pipelines them, then COMMIT.
        g = q(gid) + "::uuid"
        return tx([bind(REVISION, T), bind(GROUP_BY_ID, T, g), bind(LIVE_WINDOWS, T), CUSTOM_PLANS,
                   bind(MEMBERS, T, g), bind(WINDOW_MEMBERSHIPS, T, g)], "COMMIT")

    def readings(gid):
        # Whether the group exists, its readings and COMMIT, pipelined.
        g = q(gid) + "::uuid"
        return tx([bind(FIND_GROUP, T, g), CUSTOM_PLANS, bind(GROUP_READINGS, T, g, since, "1000", "NULL"),
                   "COMMIT"])

    scripts = {
        "device_get": [tx([bind(GET_DEVICE, T, q(x) + "::uuid"), "COMMIT"]) for x in sample],
        "group_list": [tx([list_page, list_count, "COMMIT"])],
        "group_detail_small": [detail(smallest["id"])],
        "group_detail_large": [detail(largest["id"])],
        "group_readings_small": [readings(smallest["id"])],
        "group_readings_large": [readings(largest["id"])],
        "device_readings": [tx([bind(DEVICE_EXISTS, T, q(x) + "::uuid"),
                                bind(DEVICE_READINGS, T, q(x) + "::uuid", since, "100", "NULL"), "COMMIT"])
                            for x in sample],
        "single_ingest": [tx(bind(LOCK_DEVICES, T, f"ARRAY[{q(x)}]::uuid[]"), ingest_one.replace("{id}", q(x)),
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
        explain(f"group members (members_sql), {largest['size']}-device group", bind(MEMBERS, tenant_lit, big)),
        explain(f"window memberships (WINDOW_MEMBERSHIPS), {largest['size']}-device group",
                bind(WINDOW_MEMBERSHIPS, tenant_lit, big)),
        explain(f"group members (members_sql), {smallest['size']}-device group", bind(MEMBERS, tenant_lit, small)),
        explain(f"group readings (GROUP_READINGS, hours=24, limit=1000), {largest['size']}-device group",
                bind(GROUP_READINGS, tenant_lit, big, since, "1000", "NULL")),
        explain(f"group readings (GROUP_READINGS, hours=24, limit=1000), {smallest['size']}-device group",
                bind(GROUP_READINGS, tenant_lit, small, since, "1000", "NULL")),
        explain("group list page (list_sql)", list_page.replace(":tenant", tenant_lit)),
    ]
    write(f"{d}/explain.sql", "\n".join(ex))
    json.dump({"largest": largest, "smallest": smallest, "sample": sample},
              open(f"{d}/targets.json", "w"))


if __name__ == "__main__":
    main()
