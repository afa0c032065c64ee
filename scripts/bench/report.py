#!/usr/bin/env python3
"""Turns the raw output of scripts/bench/run.sh (wrk BENCH_RESULT lines, pgbench summaries, psql
\\timing of the COPY reference, EXPLAIN output, VmHWM, the ingest-while-reading writer's summary and
per-batch log against the measured runs' spans) into BENCHMARKS.md. Standard library only.

Usage: report.py --results DIR --out BENCHMARKS.md
"""

import argparse
import json
import os
import re

BULK = 10_000
# The scenarios of the ingest-while-reading phase (run.sh: ingest_reads, "_ingest" appended).
INGEST_READS = ["device_get_ingest", "group_alerts_ingest", "group_alerts_dynamic_ingest",
                "group_alerts_tree_ingest", "device_list_label_ingest", "group_detail_large_ingest",
                "group_detail_small_ingest", "group_list_ingest"]
# The writer is said to have held its pace when it reached this share of it in every run.
WRITER_HELD = 0.95


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def wrk(results, name):
    m = re.search(r"^BENCH_RESULT (.*)$", read(os.path.join(results, f"wrk_{name}.txt")), re.M)
    if not m:
        return None
    out = {}
    for kv in m.group(1).split():
        k, v = kv.split("=")
        out[k] = float(v)
    out["errors_total"] = out.get("errors", 0) + out.get("non2xx", 0)
    return out


def pgbench(results, name):
    text = read(os.path.join(results, f"pgbench_{name}.txt"))
    tps = re.search(r"^tps = ([\d.]+)", text, re.M)
    if not tps:
        return None
    lat = re.search(r"^latency average = ([\d.]+) ms", text, re.M)
    failed = re.search(r"^number of failed transactions: (\d+)", text, re.M)
    return {"tps": float(tps.group(1)), "lat_ms": float(lat.group(1)) if lat else None,
            "failed": int(failed.group(1)) if failed else 0}


def copy_ref(results):
    text = read(os.path.join(results, "copy.txt"))
    times = [float(t) for t in re.findall(r"^Time: ([\d.]+) ms", text, re.M)]
    rows = re.search(r"^rows=(\d+)", text, re.M)
    if len(times) < 3 or not rows:
        return None
    # CREATE, COPY, INSERT ... SELECT, DROP
    secs = (times[1] + times[2]) / 1000
    n = int(rows.group(1))
    return {"rows": n, "copy_ms": times[1], "insert_ms": times[2], "rows_per_s": n / secs}


def windows(results):
    """The wall-clock span of each measured wrk run, by scenario (run.sh's windows.txt)."""
    out = {}
    for line in read(os.path.join(results, "windows.txt")).splitlines():
        parts = line.split()
        if len(parts) == 3:
            out[parts[0]] = (float(parts[1]), float(parts[2]))
    return out


def writer_batches(results):
    """The writer's batches: (end epoch s, status, latency ms, readings accepted)."""
    out = []
    for line in read(os.path.join(results, "writer_batches.txt")).splitlines():
        parts = line.split()
        if len(parts) == 4:
            out.append((float(parts[0]), int(parts[1]), float(parts[2]), int(parts[3])))
    return out


def writer_during(batches, span):
    """What the writer achieved within a measured run: readings/s accepted, batches not 2xx."""
    if not span or span[1] <= span[0]:
        return None
    inside = [b for b in batches if span[0] <= b[0] <= span[1]]
    return {"readings_per_s": sum(b[3] for b in inside) / (span[1] - span[0]),
            "failed": sum(1 for b in inside if not 200 <= b[1] < 300), "batches": len(inside)}


def fmt(x, nd=1):
    if x is None:
        return "—"
    if isinstance(x, float) and x >= 1000:
        return f"{x:,.0f}"
    return f"{x:,.{nd}f}"


def rate(x):
    return f"{x:,.2f}" if x < 20 else f"{x:,.0f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    R = args.results
    meta = dict(line.split("=", 1) for line in read(os.path.join(R, "meta.txt")).splitlines() if "=" in line)
    seed = json.loads(read(os.path.join(R, "seed.json")) or "{}")
    targets = json.loads(read(os.path.join(R, "targets.json")) or "{}")
    # The run restarts the server (to run without kept views): the peak is the highest of them.
    hwms = [int(kb) for f in sorted(os.listdir(R)) if f.startswith("server_mem")
            for kb in re.findall(r"^VmHWM:\s+(\d+) kB", read(os.path.join(R, f)), re.M)]
    hwm_mib = max(hwms) / 1024 if hwms else None
    scale = meta.get("scale", "?")
    conns, pool = meta.get("conns", "?"), meta.get("pool", "?")

    big, small = targets.get("largest", {}), targets.get("smallest", {})
    # Issue 17: the dynamic group (every device, by label) and the tree (a root over the middle tier).
    dyn, tree = targets.get("dynamic") or {}, targets.get("tree") or {}
    dyn_label = ", ".join(f"`{k}: {v}`" for k, v in (dyn.get("label") or {}).items()) or "a label"
    dyn_name = f"dynamic group ({dyn.get('size', '?')} devices by label)"
    tree_name = (f"tree ({seed.get('tree_root', {}).get('children', '?')} × {seed.get('tree_root', {}).get('child_size', '?')} "
                 f"devices under one root), `include_descendants=true`")
    label_name = f"Device list `?label=…&limit=100` (matching {dyn.get('size', '?')} devices)"
    W = {n: wrk(R, n) for n in [
        "device_get", "customer_group_list", "group_list", "group_detail_small", "group_detail_large",
        "group_alerts", "group_readings_small", "group_readings_large", "device_readings",
        "group_alerts_dynamic", "group_alerts_tree", "device_list_label", "device_list_label_all",
        "group_alerts_dynamic_unkept", "group_alerts_tree_unkept",
        "single_ingest", "bulk_ingest", "group_detail_large.double",
        "device_get.norls", "group_list.norls", "group_readings_large.norls",
        "group_detail_large_unkept", "group_alerts_unkept", "group_readings_small_unkept",
        "group_readings_large_unkept", "group_detail_large_unkept.double",
        "bucket_group_hourly", "bucket_device_year",
        *INGEST_READS]}
    P = {n: pgbench(R, n) for n in [
        "device_get", "group_list", "group_detail_small", "group_detail_large", "group_detail_dynamic",
        "group_readings_small",
        "group_readings_large", "device_readings", "single_ingest", "device_get.norls",
        "bucket_group_hourly", "bucket_group_hourly_raw", "bucket_device_year"]}
    C = copy_ref(R)
    writer = json.loads(read(os.path.join(R, "writer.json")) or "null")
    spans, batches = windows(R), writer_batches(R)
    under = {n: writer_during(batches, spans.get(n)) for n in INGEST_READS}
    target_rate = writer["target_readings_per_s"] if writer else (float(meta["ingest_rate"]) if "ingest_rate" in meta else None)
    # The lowest rate the writer reached in a measured run: below WRITER_HELD of its target the
    # rows under ingest measured a lighter load than they say, and the report says so.
    held_rates = [u["readings_per_s"] for u in under.values() if u]
    writer_low = min(held_rates) if held_rates else None
    writer_held = (writer_low is not None and target_rate is not None and writer_low >= WRITER_HELD * target_rate
                   and len(held_rates) == len(INGEST_READS))
    ingest_title = f"under ingest ({target_rate:,.0f} readings/s)" if target_rate else "under ingest"

    # scenario -> (label, reference key, reference label)
    scenarios = [
        ("device_get", "Device GET `/api/devices/{id}`", "device_get"),
        ("customer_group_list", "Customer group list `/customer/device-groups`", "group_list"),
        ("group_list", "Group list `/api/groups`", "group_list"),
        ("group_detail_small", f"Group detail, {small.get('size', '?')}-device group", "group_detail_small"),
        ("group_detail_large", f"Group detail, {big.get('size', '?')}-device group", "group_detail_large"),
        ("group_alerts", f"Group alerts, {big.get('size', '?')}-device group", "group_detail_large"),
        ("group_alerts_dynamic", f"Group alerts, {dyn_name}", "group_detail_dynamic"),
        ("group_alerts_tree", f"Group alerts, {tree_name}", None),
        ("device_list_label", label_name, None),
        ("device_list_label_all", f"Device list `?label=…`, default page (all {dyn.get('size', '?')} matches)", None),
        ("group_readings_small", f"Group readings `hours=24&limit=1000`, {small.get('size', '?')}-device group",
         "group_readings_small"),
        ("group_readings_large", f"Group readings `hours=24&limit=1000`, {big.get('size', '?')}-device group",
         "group_readings_large"),
        ("device_readings", "Device readings `hours=24&limit=100`", "device_readings"),
        ("group_detail_large_unkept", f"Group detail, {big.get('size', '?')}-device group, *without kept views*",
         "group_detail_large"),
        ("group_alerts_unkept", f"Group alerts, {big.get('size', '?')}-device group, *without kept views*",
         "group_detail_large"),
        ("group_alerts_dynamic_unkept", f"Group alerts, {dyn_name}, *without kept views*", "group_detail_dynamic"),
        ("group_alerts_tree_unkept", f"Group alerts, {tree_name}, *without kept views*", None),
        ("group_readings_small_unkept",
         f"Group readings, {small.get('size', '?')}-device group, *without kept views*", "group_readings_small"),
        ("group_readings_large_unkept",
         f"Group readings, {big.get('size', '?')}-device group, *without kept views*", "group_readings_large"),
        ("single_ingest", "Single reading ingest `POST /api/devices/{id}/readings`", "single_ingest"),
        ("bucket_group_hourly",
         f"Hourly buckets, {big.get('size', '?')}-device group at one reading a minute, 24 h, `top=1000` (rollups)",
         "bucket_group_hourly"),
        ("bucket_device_year", "Daily buckets of one device over a year (rollups)", "bucket_device_year"),
    ]
    rows = []
    for key, label, ref in scenarios:
        w, p = W.get(key), P.get(ref)
        ratio = (w["rps"] / p["tps"]) if w and p and p["tps"] else None
        rows.append((label, w, p, ratio, ref))

    checks = []  # (target, measured, pass)

    def check(name, measured_text, ok, margin):
        checks.append((name, measured_text, "PASS" if ok else ("MISS" if ok is False else "n/a"), margin))

    for key, label in [("device_get", "Device GET"), ("group_list", "Group list")]:
        w, p = W.get(key), P.get(key)
        if w and p:
            r = w["rps"] / p["tps"]
            check(f"{label} ≥ 0.40 × pgbench on the same SQL", f"{r:.2f} ({w['rps']:,.0f} vs {p['tps']:,.0f}/s)",
                  r >= 0.40, f"{r / 0.40:.2f}× of target")
        else:
            check(f"{label} ≥ 0.40 × pgbench", "not measured", None, "")
    for key, label in [("bucket_group_hourly", "Group hourly buckets"), ("bucket_device_year", "Device daily buckets, a year")]:
        w, p = W.get(key), P.get(key)
        if w and p and p["tps"]:
            r = w["rps"] / p["tps"]
            check(f"{label} ≥ 0.5 × pgbench on the same SQL", f"{r:.2f} ({w['rps']:,.1f} vs {p['tps']:,.1f}/s)",
                  r >= 0.5, f"{r / 0.5:.2f}× of target")
        else:
            check(f"{label} ≥ 0.5 × pgbench", "not measured", None, "")
    w, raw = W.get("bucket_group_hourly"), P.get("bucket_group_hourly_raw")
    if w and raw and raw["tps"]:
        r = w["rps"] / raw["tps"]
        check("Group hourly buckets ≥ 10 × aggregating raw readings (pgbench on the raw SQL)",
              f"{r:.1f}× ({w['rps']:,.1f}/s vs {raw['tps']:,.1f}/s)", r >= 10, f"{r / 10:.2f}× of target")
    for suffix, how in [("", "kept views"), ("_unkept", "without kept views")]:
        gd = W.get(f"group_detail_large{suffix}")
        if gd:
            check(f"Group detail ({big.get('size')} devices) p50 ≤ 10 ms, {how}", f"{gd['p50_ms']:.1f} ms",
                  gd["p50_ms"] <= 10, f"{gd['p50_ms'] / 10:.2f}× the limit")
            check(f"Group detail ({big.get('size')} devices) p99 ≤ 30 ms, {how}", f"{gd['p99_ms']:.1f} ms",
                  gd["p99_ms"] <= 30, f"{gd['p99_ms'] / 30:.2f}× the limit")
        gd2 = W.get(f"group_detail_large{suffix}.double")
        if gd and gd2:
            r = gd2["p50_ms"] / gd["p50_ms"]
            check(f"Group detail p50 with twice the readings ≤ 1.1×, {how}",
                  f"{r:.2f}× ({gd2['p50_ms']:.1f} vs {gd['p50_ms']:.1f} ms)", r <= 1.1, "")
        rs, rl = W.get(f"group_readings_small{suffix}"), W.get(f"group_readings_large{suffix}")
        if rs and rl:
            r = rs["p99_ms"] / rl["p99_ms"]
            check(f"Group readings: small group p99 ≤ 2× large group p99 (after 20 warm calls), {how}",
                  f"{r:.2f}× ({rs['p99_ms']:.1f} vs {rl['p99_ms']:.1f} ms)", r <= 2.0, "")
            worst = max(rs["p99_ms"], rl["p99_ms"])
            check(f"Group readings: both p99 ≤ 30 ms, {how}",
                  f"small {rs['p99_ms']:.1f} ms, large {rl['p99_ms']:.1f} ms", worst <= 30,
                  f"{worst / 30:.2f}× the limit")
    # Ingest while reading: latency limits, and rates relative to device GET under the same ingest.
    dg = W.get("device_get_ingest")
    if target_rate and (writer or any(W.get(n) for n in INGEST_READS)):
        check(f"Precondition: the writer held ≥ {WRITER_HELD:.0%} of {target_rate:,.0f} readings/s in every run "
              f"{ingest_title}", f"lowest {writer_low:,.0f} readings/s" if writer_low is not None else "not measured",
              writer_held,
              "" if writer_held else "the rows under ingest measured a lighter write load than they say")
    for key, name, stat, limit in [
            ("group_alerts_ingest", f"Group alerts ({big.get('size')} devices) {ingest_title}", "p50_ms", 5),
            ("group_alerts_ingest", f"Group alerts ({big.get('size')} devices) {ingest_title}", "p99_ms", 25),
            ("group_alerts_dynamic_ingest", f"Group alerts, {dyn_name}, {ingest_title}", "p50_ms", 5),
            ("group_alerts_dynamic_ingest", f"Group alerts, {dyn_name}, {ingest_title}", "p99_ms", 25),
            ("group_alerts_tree_ingest", f"Group alerts, {tree_name}, {ingest_title}", "p50_ms", 5),
            ("group_alerts_tree_ingest", f"Group alerts, {tree_name}, {ingest_title}", "p99_ms", 25),
            ("group_detail_large_ingest", f"Group detail ({big.get('size')} devices) {ingest_title}", "p50_ms", 40)]:
        w = W.get(key)
        label = f"{name} {stat[:3]} ≤ {limit} ms"
        if w:
            check(label, f"{w[stat]:.1f} ms", w[stat] <= limit, f"{w[stat] / limit:.2f}× the limit")
        else:
            check(label, "not measured", None, "")
    for key, name in [("group_detail_small_ingest", f"Group detail ({small.get('size')} devices)"),
                      ("group_list_ingest", "Group list"),
                      ("device_list_label_ingest", label_name)]:
        w = W.get(key)
        label = f"{name} {ingest_title} ≥ 0.30 × device GET under the same ingest"
        if w and dg and dg["rps"]:
            r = w["rps"] / dg["rps"]
            check(label, f"{r:.2f} ({rate(w['rps'])} vs {rate(dg['rps'])}/s)", r >= 0.30, f"{r / 0.30:.2f}× of target")
        else:
            check(label, "not measured", None, "")
    # The label filter without ingest too: against device GET measured in the same (kept-view) phase.
    w, quiet_dg = W.get("device_list_label"), W.get("device_get")
    label = f"{label_name} ≥ 0.30 × device GET, no ingest (same phase)"
    if w and quiet_dg and quiet_dg["rps"]:
        r = w["rps"] / quiet_dg["rps"]
        check(label, f"{r:.2f} ({rate(w['rps'])} vs {rate(quiet_dg['rps'])}/s)", r >= 0.30, f"{r / 0.30:.2f}× of target")
    else:
        check(label, "not measured", None, "")
    b = W.get("bulk_ingest")
    if b and C:
        http_rate = b["rps"] * BULK
        r = http_rate / C["rows_per_s"]
        check("Bulk ingest over HTTP ≥ 0.60 × server-side COPY", f"{r:.2f} ({http_rate:,.0f} vs {C['rows_per_s']:,.0f} rows/s)",
              r >= 0.60, f"{r / 0.60:.2f}× of target")
    rls = []
    for key in ["device_get", "group_list", "group_readings_large"]:
        on, off = W.get(key), W.get(f"{key}.norls")
        if on and off and off["rps"]:
            rls.append((key, on["rps"], off["rps"], on["rps"] / off["rps"], int(on["requests"]), int(off["requests"])))
    if rls:
        worst = min(r[3] for r in rls)
        check("RLS: throughput with it ≥ 0.75 × without (service, worst scenario)",
              ", ".join(f"{r[0]} {r[3]:.2f}" for r in rls), worst >= 0.75,
              "low confidence: see the RLS table (requests per run, shared CPUs)")
    if hwm_mib is not None:
        phase = re.search(r"^VmHWM:\s+(\d+) kB", read(os.path.join(R, "server_mem.after_ingest_phase.txt")), re.M)
        also = f" (its server at the end of the ingest-while-reading phase: {int(phase.group(1)) / 1024:.1f} MiB)" if phase else ""
        check("Peak RSS of the service (VmHWM) over the whole run ≤ 100 MiB", f"{hwm_mib:.1f} MiB{also}", hwm_mib <= 100,
              f"{hwm_mib / 100:.2f}× the limit")

    L = []
    L.append(f"# iot-api benchmarks — BENCH_SCALE={scale}\n")
    if scale != "full":
        L.append(f"> **Produced by `BENCH_SCALE={scale}`** (a development-size dataset and {meta.get('secs')}-second runs). "
                 "The targets are defined for the full-scale dataset; read the figures below as a smoke "
                 "test of the harness and of relative costs, not as the full-scale result.\n")
    L.append("Generated by `make bench` (`scripts/bench/run.sh`); raw wrk/pgbench/psql output of the run is in "
             "`target/bench/last/`. All numbers below come from one run on one machine: the service, "
             "PostgreSQL, wrk and pgbench share its cores.\n")
    L.append("## Run\n")
    L.append(f"- Commit: `{meta.get('commit', '?')}`")
    L.append(f"- Machine: {meta.get('nproc', '?')} CPUs ({meta.get('cpu', '?')}), {meta.get('mem', '?')} RAM, Linux {meta.get('kernel', '?')}")
    L.append(f"- Load average: {meta.get('loadavg', '?')} — anything well above 0 means other work shared the CPUs during the run")
    L.append(f"- {meta.get('pg_version', 'PostgreSQL ?')}, throwaway cluster tuned for the run: shared_buffers={meta.get('shared_buffers')}, "
             "**fsync=off, synchronous_commit=off, full_page_writes=off, wal_level=minimal** (a benchmark-only "
             "cluster: durability is off, so ingest numbers are upper bounds for a durable setup), jit=off, "
             "random_page_cost=1.1, work_mem=32MB")
    L.append(f"- Service: {meta.get('binary', 'release build')}, `IOT_DB_POOL_SIZE={pool}`, HTTP workers = one per core, `RUST_LOG=warn`")
    L.append(f"- Load: {meta.get('wrk_version', 'wrk')}; `wrk -t1 -c{conns}` per scenario "
             f"(bulk ingest: `-c{meta.get('bulk_conns')}`), {meta.get('warm')} s warm-up then {meta.get('secs')} s measured")
    L.append(f"- References: `pgbench -n -M prepared -c {pool} -T {meta.get('pg_secs')}` on each endpoint's own statements, taken "
             "from the binary (`iot-api sql-catalog`) by `scripts/bench/prepare.py`, in a transaction bound to the tenant as the service binds it "
             "(`BEGIN`; `set_config('role','iot_app',true)`, `set_config('app.tenant_id',…,true)`; the statements; `COMMIT`), so "
             "RLS applies to the reference too. pgbench sends them one round trip each; the service pipelines them (a read sends "
             "BEGIN, the binding, its statements and COMMIT in one round trip): fewer round trips is one of the service's means")
    L.append(f"- Build {meta.get('build_secs', '?')} s; whole run {meta.get('total_secs', '?')} s\n")

    L.append("## Dataset\n")
    if seed:
        gs = seed.get("groups", {})
        gtxt = ", ".join(f"{len(v)} × {k}" for k, v in sorted(gs.items(), key=lambda kv: -int(kv[0])))
        st = seed.get("small_tenants", [])
        L.append(f"- Large tenant `{seed.get('tenant')}`: {len(seed.get('devices', [])):,} devices with thresholds; "
                 f"groups of {gtxt} devices; {seed.get('readings', 0):,} readings over {seed.get('days')} days "
                 f"({seed.get('per_device')} per device); {seed.get('windows')} maintenance windows")
        dgroup, tr = seed.get("dynamic_group"), seed.get("tree_root")
        if dgroup or tr:
            L.append(f"- Issue 17: every device of `{seed.get('tenant')}` is created with the label {dyn_label}"
                     + (f"; a dynamic group `{{\"labels\": {json.dumps(dgroup['label'])}}}` matches all "
                        f"{dgroup['size']:,} of them" if dgroup else "")
                     + (f"; a root group (no members of its own) is the parent of the {tr['children']} × "
                        f"{tr['child_size']:,} groups, so its tree covers {tr['size']:,} devices, each once" if tr else ""))
        if st:
            L.append(f"- {len(st)} small tenants × {len(st[0]['devices'])} devices, {seed.get('small_readings', 0):,} readings in all")
        L.append(f"- Seeded through the HTTP API in {seed.get('seconds')} s (devices, groups with `device_ids`, "
                 "windows, readings in batches of 10,000); database size after seeding "
                 f"{read(os.path.join(R, 'db_size.txt')).strip()}\n")

    L.append("## Scenarios\n")
    L.append(f"HTTP through wrk at {conns} connections; reference = pgbench at {pool} clients on the same SQL "
             "(for group alerts the reference is the group-detail SQL, which is what the endpoint runs; the dynamic "
             "group's members are rows as a static group's, so its reference is the same SQL for that group; the "
             "tree's alerts and the label-filtered device list have none: their statements are not in "
             "`iot-api sql-catalog`). The label-filtered list asks a page of 100 (`limit=100`; the device list has no "
             "default limit, so without one it answers every match, also measured) and counts every match "
             "(`X-Total-Count`). "
             "Ratio = service req/s ÷ reference tx/s.\n")
    L.append("**Kept views.** The service keeps the rendered detail and alerts of groups of 100+ devices, and "
             "group readings as JSON, with the tenant's revision (moved on by every write) and the "
             "instant time alone would change them; a request that finds the revision unchanged costs one small "
             "query. Nothing writes during a read scenario, so after its first request the scenario measures kept "
             "views. The rows *without kept views* are the same scenarios on a server started with "
             "`IOT_GROUP_VIEWS_MB=0`: what every request costs when no view is kept. *Ingest while reading* "
             "below measures reads while the tenant is written to.\n")
    L.append("| Scenario | req/s | p50 ms | p99 ms | errors | reference tx/s (avg ms) | ratio |")
    L.append("|---|---:|---:|---:|---:|---:|---:|")
    for label, w, p, ratio, ref in rows:
        if w:
            reft = "{} ({:.2f})".format(rate(p["tps"]), p["lat_ms"] or 0) if p else "—"
            L.append(f"| {label} | {rate(w['rps'])} | {w['p50_ms']:.2f} | {w['p99_ms']:.2f} | {int(w['errors_total'])} | "
                     f"{reft} | {fmt(ratio, 2)} |")
        else:
            L.append(f"| {label} | failed | | | | | |")
    if b:
        rr = f"{C['rows_per_s']:,.0f} rows/s (COPY {C['rows']:,} rows)" if C else "—"
        ratio = (b["rps"] * BULK / C["rows_per_s"]) if C else None
        L.append(f"| Bulk ingest `POST /api/readings`, 10,000 readings a request (-c{meta.get('bulk_conns')}) | "
                 f"{b['rps']:,.2f} ({b['rps'] * BULK:,.0f} rows/s) | {b['p50_ms']:.1f} | {b['p99_ms']:.1f} | "
                 f"{int(b['errors_total'])} | {rr} | {fmt(ratio, 2)} |")
    for suffix, how in [("", ""), ("_unkept", ", *without kept views*")]:
        gd2 = W.get(f"group_detail_large{suffix}.double")
        if gd2:
            L.append(f"| Group detail, {big.get('size')}-device group, **twice the readings**{how} | {rate(gd2['rps'])} | "
                     f"{gd2['p50_ms']:.2f} | {gd2['p99_ms']:.2f} | {int(gd2['errors_total'])} | — | — |")
    L.append("")
    if C:
        L.append(f"COPY reference: `COPY readings_staging FROM '…csv'` (unlogged staging table) {C['copy_ms']:.0f} ms + "
                 f"`INSERT INTO readings … SELECT` as the owner {C['insert_ms']:.0f} ms for {C['rows']:,} rows "
                 "(the same count as the HTTP bulk run, same devices, new instants, same indexed partitioned table; "
                 "it does not maintain `latest_readings`, which the service's ingest statement also upserts).\n")

    dense = read(os.path.join(R, "dense_readings.txt")).strip()
    if W.get("bucket_group_hourly") or P.get("bucket_group_hourly_raw"):
        L.append("### Time buckets (issue 16)\n")
        wg, pg, raw = W.get("bucket_group_hourly"), P.get("bucket_group_hourly"), P.get("bucket_group_hourly_raw")
        wy, py = W.get("bucket_device_year"), P.get("bucket_device_year")
        dtimes = [float(t) / 1000 for t in re.findall(r"^Time: ([\d.]+) ms", read(os.path.join(R, "dense.txt")), re.M)]
        rolled = read(os.path.join(R, "dense_rollup_secs.txt")).strip()
        count = f"{int(dense):,}" if dense.isdigit() else "?"
        hours = read(os.path.join(R, "dense_rollups.txt")).strip()
        hours = f"{int(hours):,}" if hours.isdigit() else "?"
        L.append(f"Measured last, on the issue's scenario: the {big.get('size', '?')}-device group at one reading a minute "
                 f"over the 24 bucketed hours ({count} readings")
        L[-1] += (f"; the seeded readings of those hours replaced in SQL as the owner"
                  + (f" in {sum(dtimes[1:]):.0f} s" if len(dtimes) > 1 else "")
                  + f", their hours marked pending and rolled up with the statement of the service's job"
                  + (f" in {rolled} s" if rolled else "")
                  + f", {hours} rollup rows), and one device with a "
                  f"reading every 10 minutes over a year ({seed.get('year_readings', 0):,} readings, seeded through the "
                  "API). The service answers from the hourly rollups (whole UTC hours; the raw table only for pending hours "
                  "and the parts of buckets that are no whole hour). *Raw* = the same answer aggregated from the readings "
                  "alone (`GROUP_BUCKETS_RAW`: the whole range one raw edge), pgbench in the same run, with no statement "
                  "timeout (the service's 4.5 s deadline would cut it off: the service could not answer this way at all).\n")
        L.append("| | service req/s | pgbench on the same SQL tx/s (avg ms) | service ÷ reference | raw SQL tx/s (avg ms) | service ÷ raw |")
        L.append("|---|---:|---:|---:|---:|---:|")
        def cell(p):
            return f"{rate(p['tps'])} ({p['lat_ms'] or 0:,.0f})" if p else "—"
        def ratio_of(a, b, key_a="rps"):
            return f"{a[key_a] / b['tps']:.2f}" if a and b and b["tps"] else "—"
        L.append(f"| Hourly buckets, {big.get('size', '?')}-device group, 24 h | {rate(wg['rps']) if wg else '—'} | {cell(pg)} | "
                 f"{ratio_of(wg, pg)} | {cell(raw)} | **{ratio_of(wg, raw)}** |")
        L.append(f"| Daily buckets, one device, a year | {rate(wy['rps']) if wy else '—'} | {cell(py)} | {ratio_of(wy, py)} | — | — |")
        L.append("")
        L.append("Why rollups: an hourly rollup row (count, sum, min, max, first and last of one device's hour) replaces "
                 f"the hour's readings, so the group's answer reads {hours} rollup rows whatever the readings' density, "
                 "while the raw aggregation reads every reading: at one reading a minute a rollup row stands for 60 of "
                 "them (at the 7-day seed's density, one every 10 minutes, for 6, and the gain was 4 ×). Where the "
                 "group query's time goes (EXPLAIN below): the per-member counts over the rollup hours that choose the "
                 "top 1,000 (a hash join with the members and a hash aggregate), then an index scan per chosen member "
                 "for its 24 hours. The service forces custom plans for it (`CUSTOM_PLANS`): a generic plan ran at a "
                 "third of the SQL's speed.\n")
        L.append("**Ingest cost of the rollups.** They are kept by a background job (`roll_up_hours`, a bounded batch "
                 "a minute), so the ingest statement only marks the hours a batch reaches as pending (one `INSERT … ON "
                 "CONFLICT DO NOTHING` of a row or two per batch, and a `FOR SHARE` of the existing marks in the first "
                 "pipeline). Measured apart when they were added (the `INGEST` statement with 10,000 readings of 10,000 "
                 "devices, pgbench `-c 2 -T 15`, before → after, three runs): 193 → 186 ms, 459 → 485 ms, 285 → 349 ms "
                 "(the spread is the shared machine's; no cost stands out of it). A first design that merged each batch "
                 "into the rollups in the same statement cost 448 → 1,178 ms (2.6 ×) and was dropped.\n")

    if writer or any(W.get(n) for n in INGEST_READS):
        L.append("### Ingest while reading\n")
        if writer:
            L.append(f"A writer (`scripts/bench/writer.py`, {writer['threads']} threads, a keep-alive connection each) sent "
                     f"`POST /api/readings` batches of {writer['batch']} readings of random devices of `{seed.get('tenant', '?')}` "
                     f"(distinct within a batch), stamped now, at a steady {target_rate:,.0f} readings/s, "
                     f"{(writer['crossing_share'] or 0):.1%} of them across a warning or critical threshold, "
                     "through the warm-up and measured run of each scenario below. Every write moves the tenant's "
                     "revision, so the kept views of its groups go stale between reads: these rows are the reads of "
                     "a tenant written to all the time. *Writer* = readings/s it had stored (2xx answers) within the "
                     "row's measured run, and its batches answered otherwise (non-2xx or no answer) in it.\n")
            L.append(f"Writer over the whole phase: {writer['batches_sent']:,} batches sent in {writer['seconds']:.0f} s, "
                     f"{writer['batches_ok']:,} answered 2xx, {writer['readings_per_s']:,.0f} readings/s stored "
                     f"(target {target_rate:,.0f}); non-2xx: {writer['non2xx'] or 'none'}; no answer: {writer['errors']}; "
                     f"batches skipped for running over a second late: {writer['missed']}; batch latency p50 "
                     f"{fmt(writer['batch_p50_ms'], 1)} ms, p99 {fmt(writer['batch_p99_ms'], 1)} ms.\n")
            if not writer_held:
                L.append(f"> **The writer did not hold {target_rate:,.0f} readings/s** in every measured run (lowest "
                         f"{fmt(writer_low, 0)} readings/s, see the *Writer* column): those rows measured a lighter "
                         "write load than their title says.\n")
        else:
            L.append("> **The writer left no summary** (`writer.json`): the rows below are not known to be under ingest.\n")
        L.append(f"| Scenario | req/s | p50 ms | p99 ms | errors | writer readings/s (failed batches) | "
                 f"req/s ÷ device GET {ingest_title} | without ingest: req/s, p50 ms |")
        L.append("|---|---:|---:|---:|---:|---:|---:|---:|")
        for key, label in [
                ("device_get_ingest", "Device GET `/api/devices/{id}`"),
                ("group_alerts_ingest", f"Group alerts, {big.get('size', '?')}-device group"),
                ("group_alerts_dynamic_ingest", f"Group alerts, {dyn_name}"),
                ("group_alerts_tree_ingest", f"Group alerts, {tree_name}"),
                ("device_list_label_ingest", label_name),
                ("group_detail_large_ingest", f"Group detail, {big.get('size', '?')}-device group"),
                ("group_detail_small_ingest", f"Group detail, {small.get('size', '?')}-device group"),
                ("group_list_ingest", "Group list `/api/groups`")]:
            w, u, quiet = W.get(key), under.get(key), W.get(key[:-len("_ingest")])
            title = f"{label} {ingest_title}"
            if not w:
                L.append(f"| {title} | failed | | | | | | |")
                continue
            wr = f"{u['readings_per_s']:,.0f} ({u['failed']})" if u else "—"
            ratio = f"{w['rps'] / dg['rps']:.2f}" if dg and dg["rps"] else "—"
            q = f"{rate(quiet['rps'])}, {quiet['p50_ms']:.2f}" if quiet else "—"
            L.append(f"| {title} | {rate(w['rps'])} | {w['p50_ms']:.2f} | {w['p99_ms']:.2f} | {int(w['errors_total'])} | "
                     f"{wr} | {ratio} | {q} |")
        L.append("")

    L.append("## Targets\n")
    L.append("| Target | Measured | Result | Margin |")
    L.append("|---|---|---|---|")
    for name, measured, res, margin in checks:
        L.append(f"| {name} | {measured} | **{res}** | {margin} |")
    L.append("")
    L.append("How the targets were measured:\n")
    L.append("- *Twice the readings*: after all scenarios, the seeded 7 days of readings were copied 7 days further "
             "back with one `INSERT … SELECT` as the owner (faster than re-seeding through HTTP; the table ends up "
             f"with {read(os.path.join(R, 'readings_after_double.txt')).strip() or '?'} rows), `VACUUM ANALYZE`d, "
             "and the group-detail scenario was run again, with and without kept views. (The copy, a write bound to "
             "no tenant, moves every tenant's revision, so the first request after it reads afresh; it leaves the "
             "latest readings as they were.)")
    L.append("- *RLS*: the service cannot run without RLS without a code change (it always switches to `iot_app`), "
             "so the bench disabled RLS on the seven tables (`ALTER TABLE … DISABLE ROW LEVEL SECURITY`, bench cluster "
             "only), re-ran three scenarios against the same server, then re-enabled it.")
    if rls:
        L.append("")
        L.append("  | Scenario | req/s with RLS (requests) | req/s without (requests) | ratio |")
        L.append("  |---|---:|---:|---:|")
        for k, on, off, r, n_on, n_off in rls:
            L.append(f"  | {k} | {rate(on)} ({n_on}) | {rate(off)} ({n_off}) | {r:.2f} |")
        pn, pf = P.get("device_get"), P.get("device_get.norls")
        if pn and pf:
            L.append(f"  | pgbench device_get SQL (SQL level) | {pn['tps']:,.0f} | {pf['tps']:,.0f} | {pn['tps'] / pf['tps']:.2f} |")
        L.append("")
        L.append("  With and without RLS are measured minutes apart on shared CPUs (see the load average above); "
                 "ratios above 1 show that run-to-run noise is larger than the RLS cost for the cheap queries. "
                 "Scenarios with few requests (tens) are not conclusive.")
    L.append("- *Peak memory*: `VmHWM` from `/proc/<pid>/status` of each server process of the run, the highest "
             "(the first server covers seeding, the kept-view scenarios and the RLS re-runs; the others the runs "
             "without kept views, the ingest-while-reading phase, ingest and the double-readings re-runs).")
    L.append("- *Under ingest*: the rates are compared with device GET measured in the same phase, under the same "
             "writer; the writer's pace is checked within each measured run (its per-batch log against the run's "
             "wall-clock span), not only over the whole phase.")
    L.append("- Group readings were preceded by 20 sequential warm calls and the wrk warm-up.\n")

    L.append("## EXPLAIN (ANALYZE, BUFFERS)\n")
    L.append("Run as the service runs them: inside a transaction as `iot_app` with `app.tenant_id` set "
             "(so the RLS quals are in the plans), with literal parameters, after the scenarios "
             "(warm cache).\n")
    ex = read(os.path.join(R, "explain.txt"))
    for part in re.split(r"^### ", ex, flags=re.M):
        part = part.strip()
        if not part:
            continue
        title, _, body = part.partition("\n")
        L.append(f"### {title}\n")
        L.append("```")
        L.append(body.strip())
        L.append("```\n")
    with open(args.out, "w") as f:
        f.write("\n".join(L) + "\n")


if __name__ == "__main__":
    main()
