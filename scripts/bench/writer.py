#!/usr/bin/env python3
"""The writer of the ingest-while-reading phase (standard library only).

Sends batches of readings to `POST /api/readings` at a fixed pace (default 2,000 readings/s in
batches of 100, i.e. 20 batches/s) for random devices of the seeded large tenant, stamped now, about 1% of
them crossing a warning or critical threshold, until --duration has passed or it receives
SIGTERM/SIGINT. Pacing is open-loop: batch k is due at start + k × batch / rate, so a slow answer does
not lower the offered rate; two threads with a keep-alive connection each send the due batches.
A sender more than a second behind skips the overdue batches (counted as `missed`) rather than
bursting to catch up.

Writes, for report.py:
  --log FILE   one line per batch: `<end epoch s> <status> <latency ms> <accepted>`
               (status 0 = no answer: connection error or timeout)
  --out FILE   a JSON summary: batches sent/accepted, non-2xx by status, errors, missed,
               achieved readings/s, batch latency p50/p99, share of crossing readings.

Usage: writer.py --base URL --seed seed.json --out writer.json --log writer_batches.txt
                 [--rate 2000] [--batch 100] [--duration 300] [--cross 0.01]
"""

import argparse
import datetime as dt
import http.client
import json
import random
import signal
import sys
import threading
import time
import urllib.parse

# The seed gives every device of the large tenant the same thresholds (seed.py, create_devices):
# critical below -10 or above 40, warning below 0 or above 30. Normal values stay well inside.
NORMAL = (15.0, 25.0)
CROSSING = [35.0, -5.0, 45.0, -15.0]  # warning upper, warning lower, critical upper, critical lower


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True)
    ap.add_argument("--seed", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--rate", type=float, default=2000.0, help="readings per second")
    ap.add_argument("--batch", type=int, default=100, help="readings per batch")
    ap.add_argument("--duration", type=float, default=300.0, help="seconds, at most")
    ap.add_argument("--cross", type=float, default=0.01, help="share of readings crossing a threshold")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    seed = json.load(open(args.seed))
    devices, token = seed["devices"], seed["token"]
    u = urllib.parse.urlsplit(args.base)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    interval = args.batch / args.rate

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    lock = threading.Lock()
    state = {"next": 0, "missed": 0, "last_us": 0}
    log_lines, latencies = [], []
    stats = {"sent": 0, "ok": 0, "accepted": 0, "crossing": 0, "errors": 0, "non2xx": {}}
    t0 = time.monotonic()
    wall0 = time.time()
    deadline = t0 + args.duration

    def stamp():
        # Now, to the microsecond, strictly increasing across batches: no two batches share an
        # instant, so no reading of one replaces a reading of another.
        with lock:
            us = max(int(time.time() * 1e6), state["last_us"] + 1)
            state["last_us"] = us
        t = dt.datetime.fromtimestamp(us // 1_000_000, dt.timezone.utc)
        return t.strftime("%Y-%m-%dT%H:%M:%S") + f".{us % 1_000_000:06d}Z"

    def next_slot():
        """The index of the next batch to send and when it is due, or None when it is time to stop."""
        with lock:
            now = time.monotonic()
            k = state["next"]
            if now - (t0 + k * interval) > 1.0:
                behind = int((now - t0) / interval)
                state["missed"] += behind - k
                k = behind
            state["next"] = k + 1
        due = t0 + k * interval
        return None if due >= deadline else due

    def sender(n):
        rnd = random.Random(n * 7919 + int(wall0))
        conn = None
        while not stop.is_set():
            due = next_slot()
            if due is None:
                break
            delay = due - time.monotonic()
            if delay > 0 and stop.wait(delay):
                break
            ts = stamp()
            crossing = 0
            readings = []
            # Distinct devices within a batch: one reading per device and instant.
            for d in rnd.sample(devices, min(args.batch, len(devices))):
                if rnd.random() < args.cross:
                    value = rnd.choice(CROSSING)
                    crossing += 1
                else:
                    value = round(rnd.uniform(*NORMAL), 3)
                readings.append({"device_id": d, "timestamp": ts, "value": value})
            body = json.dumps({"readings": readings}, separators=(",", ":")).encode()
            started = time.monotonic()
            status, accepted = 0, 0
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
                conn.request("POST", "/api/readings", body=body, headers=headers)
                resp = conn.getresponse()
                raw = resp.read()
                status = resp.status
                if 200 <= status < 300:
                    accepted = int(json.loads(raw).get("accepted", 0))
            except (OSError, http.client.HTTPException, ValueError):
                if conn is not None:
                    conn.close()
                conn = None
            ms = (time.monotonic() - started) * 1000
            with lock:
                stats["sent"] += 1
                if status == 0:
                    stats["errors"] += 1
                elif 200 <= status < 300:
                    stats["ok"] += 1
                    stats["accepted"] += accepted
                    stats["crossing"] += crossing
                    latencies.append(ms)
                else:
                    stats["non2xx"][str(status)] = stats["non2xx"].get(str(status), 0) + 1
                log_lines.append(f"{time.time():.3f} {status} {ms:.2f} {accepted}")
        if conn is not None:
            conn.close()

    threads = [threading.Thread(target=sender, args=(n,), daemon=True) for n in range(args.threads)]
    for t in threads:
        t.start()
    # The main thread only waits, so the signal handler runs promptly.
    while any(t.is_alive() for t in threads):
        for t in threads:
            t.join(0.2)
    elapsed = time.monotonic() - t0
    if not stop.is_set():  # the last batch went out up to one interval before the deadline
        elapsed = max(elapsed, args.duration)

    latencies.sort()

    def pct(p):
        return round(latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))], 2) if latencies else None

    summary = {
        "target_readings_per_s": args.rate,
        "batch": args.batch,
        "threads": args.threads,
        "start": wall0,
        "seconds": round(elapsed, 3),
        "batches_sent": stats["sent"],
        "batches_ok": stats["ok"],
        "readings_accepted": stats["accepted"],
        "readings_per_s": round(stats["accepted"] / elapsed, 1) if elapsed > 0 else 0.0,
        "crossing_share": round(stats["crossing"] / stats["accepted"], 4) if stats["accepted"] else None,
        "non2xx": stats["non2xx"],
        "errors": stats["errors"],
        "missed": state["missed"],
        "batch_p50_ms": pct(50),
        "batch_p99_ms": pct(99),
        "stopped_by": "signal" if stop.is_set() else "duration",
    }
    with open(args.log, "w") as f:
        f.write("\n".join(log_lines) + ("\n" if log_lines else ""))
    with open(args.out, "w") as f:
        json.dump(summary, f, indent=1)
    sys.stderr.write(f"  writer: {stats['sent']} batches in {elapsed:.1f}s, {summary['readings_per_s']:,.0f} "
                     f"readings/s accepted (target {args.rate:,.0f}), non-2xx {stats['non2xx'] or 0}, "
                     f"errors {stats['errors']}, missed {state['missed']}\n")


if __name__ == "__main__":
    main()
