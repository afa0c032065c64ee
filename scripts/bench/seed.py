#!/usr/bin/env python3
"""Seeds the benchmark dataset through iot-api's own HTTP API (standard library only).

One large tenant ("bench-big") with devices that have thresholds, groups of every size, readings
spread over 7 days and maintenance windows; plus small tenants so that tenant filtering (and
row-level security) has other rows to skip. Writes what the load scenarios need (token, ids) as
JSON to --out. A text progress bar goes to stderr.

Usage: seed.py --base http://127.0.0.1:PORT --bin target/release/iot-api --scale small|full --out seed.json
(IOT_JWT_SECRET must be set: tokens come from `iot-api token`.)
"""

import argparse
import datetime as dt
import http.client
import json
import math
import subprocess
import sys
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

SCALES = {
    # big tenant devices, readings per device, group sizes (size, count), small tenants, devices each;
    # tree: the size of the groups that are the children of one root (issue 17: a tree of 10 x 1,000)
    "full": dict(devices=10_000, per_device=1_000, groups=[(10_000, 1), (1_000, 10), (10, 100)],
                 small_tenants=9, small_devices=100, windows=100, tree=1_000),
    "small": dict(devices=500, per_device=100, groups=[(500, 1), (50, 10), (10, 100)],
                  small_tenants=9, small_devices=20, windows=100, tree=50),
}
# Every device of the big tenant carries this label; a dynamic group selects them all by it.
FLEET_LABEL = {"fleet": "bench"}
BATCH = 10_000
DAYS = 7
WORKERS = 6


class Progress:
    """One-line text progress bar on stderr."""

    def __init__(self, label, total):
        self.label, self.total, self.done = label, max(total, 1), 0
        self.start = time.monotonic()
        self.last = 0.0
        self.lock = threading.Lock()
        self.draw(force=True)

    def add(self, n=1):
        with self.lock:
            self.done += n
            self.draw()

    def draw(self, force=False):
        now = time.monotonic()
        if not force and now - self.last < 0.2 and self.done < self.total:
            return
        self.last = now
        frac = min(self.done / self.total, 1.0)
        width = 30
        bar = "#" * int(frac * width) + "." * (width - int(frac * width))
        elapsed = now - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else 0.0
        sys.stderr.write(f"\r  {self.label:<22} [{bar}] {self.done:>9,}/{self.total:,} "
                         f"{rate:>9,.0f}/s  eta {eta:5.0f}s ")
        sys.stderr.flush()

    def finish(self):
        self.draw(force=True)
        sys.stderr.write(f" done in {time.monotonic() - self.start:.1f}s\n")


class Api:
    """Keep-alive HTTP client, one connection per thread."""

    def __init__(self, base):
        u = urllib.parse.urlsplit(base)
        self.host, self.port = u.hostname, u.port
        self.local = threading.local()

    def call(self, method, path, token, body=None, expect=(200, 201)):
        data = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        for attempt in range(5):
            conn = getattr(self.local, "conn", None)
            if conn is None:
                conn = self.local.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
            try:
                conn.request(method, path, body=data, headers=headers)
                resp = conn.getresponse()
                raw = resp.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                self.local.conn = None
                time.sleep(0.2 * (attempt + 1))
                continue
            if resp.status == 503 and attempt < 4:
                time.sleep(0.2 * (attempt + 1))
                continue
            if resp.status not in expect:
                raise RuntimeError(f"{method} {path}: {resp.status} {raw[:300]!r}")
            return json.loads(raw) if raw else None
        raise RuntimeError(f"{method} {path}: connection failed repeatedly")


def token(binary, tenant):
    out = subprocess.run([binary, "token", "--tenant", tenant, "--role", "admin", "--sub", "bench-seed",
                          "--ttl-secs", str(7 * 86400)], check=True, capture_output=True, text=True)
    return out.stdout.strip()


def iso(t):
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def create_devices(api, pool, tok, tenant, count, label, labels=None):
    bar = Progress(label, count)

    def one(i):
        body = {
            "name": f"{tenant}-dev-{i:05d}",
            "unit": "°C",
            "status": "connected",
            "site_id": f"site-{i % 20}",
            "device_type": f"type-{i % 5}",
            "threshold_critical_lower": -10.0,
            "threshold_warning_lower": 0.0,
            "threshold_warning_upper": 30.0,
            "threshold_critical_upper": 40.0,
        }
        if labels:
            body["labels"] = labels
        dev = api.call("POST", "/api/devices", tok, body)
        bar.add()
        return dev["id"]

    ids = list(pool.map(one, range(count)))
    bar.finish()
    return ids


def value_at(dev_index, i, per_device):
    # Mostly normal; the newest reading of every 20th device is a warning, every 50th critical.
    if i == per_device - 1:
        if dev_index % 50 == 0:
            return 45.0
        if dev_index % 20 == 0:
            return 35.0
    return round(20.0 + 5.0 * math.sin((i + dev_index) / 10.0), 3)


def ingest_readings(api, pool, tok, device_ids, per_device, now, label):
    """Device-major batches of exactly BATCH readings (fewer in the last), oldest to newest."""
    step = DAYS * 86400 / per_device
    start = now - DAYS * 86400
    rows = [(d, i) for d in range(len(device_ids)) for i in range(per_device)]
    batches = [rows[k:k + BATCH] for k in range(0, len(rows), BATCH)]
    bar = Progress(label, len(rows))

    def send(batch):
        body = {"readings": [
            {"device_id": device_ids[d], "timestamp": iso(start + (i + 1) * step - (d % 60)),
             "value": value_at(d, i, per_device)}
            for d, i in batch]}
        res = api.call("POST", "/api/readings", tok, body)
        assert res["accepted"] == len(batch), res
        bar.add(len(batch))

    list(pool.map(send, batches))
    bar.finish()
    return len(rows)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--scale", choices=sorted(SCALES), default="full")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    cfg = SCALES[args.scale]
    api = Api(args.base)
    now = math.floor(time.time()) - 60
    t0 = time.monotonic()
    big = "bench-big"
    tok = token(args.bin, big)
    pool = ThreadPoolExecutor(WORKERS)
    ingest_pool = ThreadPoolExecutor(3)

    sys.stderr.write(f"seeding ({args.scale}) through {args.base}\n")
    devices = create_devices(api, pool, tok, big, cfg["devices"], "devices (big tenant)", FLEET_LABEL)

    small = []
    for t in range(1, cfg["small_tenants"] + 1):
        name = f"bench-small-{t}"
        stok = token(args.bin, name)
        ids = create_devices(api, pool, stok, name, cfg["small_devices"], f"devices ({name})")
        small.append({"tenant": name, "token": stok, "devices": ids})

    # Groups: every size in turn; members are consecutive slices (wrapping), so sizes are exact.
    # The groups of the tree's size are created as the children of one root (with no members of
    # its own): their slices start at distinct multiples of the size (k * 7 mod 10 runs over all
    # ten), so the root's tree covers every device once.
    groups = {}
    total_groups = sum(n for _, n in cfg["groups"]) + 2  # + the tree's root + the dynamic group
    bar = Progress("groups", total_groups)
    root = api.call("POST", "/api/groups", tok, {"name": "bench tree root",
                                                 "description": f"parent of the {cfg['tree']}-device groups"})
    bar.add()
    for size, count in cfg["groups"]:
        made = []

        def one(k, size=size):
            offset = (k * size * 7) % len(devices)
            members = [devices[(offset + j) % len(devices)] for j in range(size)]
            body = {"name": f"bench group {size}-{k:03d}", "description": f"{size} devices",
                    "device_ids": members}
            if size == cfg["tree"]:
                body["parent_id"] = root["id"]
            g = api.call("POST", "/api/groups", tok, body)
            bar.add()
            return {"id": g["id"], "slug": g["group_id"], "size": size}

        made = list(pool.map(one, range(count)))
        groups[str(size)] = made
    # A dynamic group matching every device of the tenant by its label (issue 17), made after the
    # devices: its members are selected once, as rows (device writes re-select them).
    dyn = api.call("POST", "/api/groups", tok, {"name": "bench dynamic fleet", "description": "every device, by label",
                                                "filter": {"labels": FLEET_LABEL}})
    assert len(dyn["devices"]) == len(devices), (len(dyn["devices"]), len(devices))
    bar.add()
    bar.finish()
    tree_size = sum(g["size"] for g in groups[str(cfg["tree"])])
    assert tree_size == len(devices), (tree_size, len(devices))

    # Maintenance windows: a mix of one-off, recurring, site-scoped and group-scoped (the group
    # ones feed the window_groups column of the group-detail query).
    bar = Progress("maintenance windows", cfg["windows"])
    slugs = [g["slug"] for size in groups for g in groups[size]]

    def window(k):
        starts = now - 30 * 86400 + k * 3600
        body = {"name": f"bench window {k:03d}", "starts_at": iso(starts)}
        if k % 3 == 0:
            body["ends_at"] = iso(starts + (k % 60) * 86400 + 3600)  # some ended, some live
        if k % 2 == 0:
            body["recurring"] = {"dow": [1, 2, 3, 4, 5], "start_hour": k % 20, "end_hour": k % 20 + 2}
        if k % 4 == 1:
            body["site_ids"] = [f"site-{k % 20}"]
        if k % 5 == 2:
            body["group_ids"] = [slugs[k % len(slugs)], slugs[(k * 7) % len(slugs)]]
        if k % 10 == 9:
            body["enabled"] = False
        api.call("POST", "/customer/maintenance-windows", tok, body)
        bar.add()

    list(pool.map(window, range(cfg["windows"])))
    bar.finish()

    readings = ingest_readings(api, ingest_pool, tok, devices, cfg["per_device"], now,
                               "readings (big tenant)")
    small_readings = 0
    all_small = [(s["token"], d) for s in small for d in s["devices"]]
    if all_small:
        for s in small:
            small_readings += ingest_readings(api, ingest_pool, s["token"], s["devices"],
                                              cfg["per_device"], now, f"readings ({s['tenant']})")

    # A year of one device (every 10 minutes), for daily buckets over a year (issue 16).
    year_device = devices[0]
    year_rows = [now - 365 * 86400 + k * 600 for k in range(365 * 144)]
    year_rows = [t for t in year_rows if t < now - DAYS * 86400]  # not over the seeded days
    bar = Progress("a year of one device", len(year_rows))

    def send_year(chunk):
        body = {"readings": [{"device_id": year_device, "timestamp": iso(t),
                              "value": round(20.0 + 5.0 * math.sin(t / 86400.0), 3)} for t in chunk]}
        res = api.call("POST", "/api/readings", tok, body)
        assert res["accepted"] == len(chunk), res
        bar.add(len(chunk))

    list(ingest_pool.map(send_year, [year_rows[k:k + BATCH] for k in range(0, len(year_rows), BATCH)]))
    bar.finish()

    seed = {
        "scale": args.scale,
        "year_device": year_device,
        "year_readings": len(year_rows),
        "tenant": big,
        "token": tok,
        "devices": devices,
        "groups": groups,
        "dynamic_group": {"id": dyn["id"], "slug": dyn["group_id"], "size": len(dyn["devices"]),
                          "label": FLEET_LABEL},
        "tree_root": {"id": root["id"], "slug": root["group_id"], "size": tree_size,
                      "children": len(groups[str(cfg["tree"])]), "child_size": cfg["tree"]},
        "small_tenants": small,
        "readings": readings,
        "small_readings": small_readings,
        "per_device": cfg["per_device"],
        "windows": cfg["windows"],
        "now": now,
        "days": DAYS,
        "seconds": round(time.monotonic() - t0, 1),
    }
    with open(args.out, "w") as f:
        json.dump(seed, f)
    sys.stderr.write(f"seeded in {seed['seconds']}s: {len(devices):,} devices, "
                     f"{total_groups} groups, {cfg['windows']} windows, {readings + small_readings:,} readings\n")


if __name__ == "__main__":
    main()
