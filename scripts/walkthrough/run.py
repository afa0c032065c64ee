#!/usr/bin/env python3
"""Runs the README walk-through's blocks against a live server and prints them with what each
command answered (`#→` marks where an answer goes), so the README's `# →` lines come from a real
run: `IOT_JWT_SECRET=… TOKEN=… scripts/walkthrough/run.py` with `make run` serving on :8080
(the blocks start empty: run them on a fresh embedded store). Exits 1 if any command failed."""

import os
import pathlib
import subprocess
import sys

here = pathlib.Path(__file__).parent
blocks = sorted(here.glob("[0-9]-*.sh"))
sources = [b.read_text() for b in blocks]
script = "set -o pipefail\n" + "\n".join(
    "\n".join("echo; echo '@@MARK@@'" if line == "#→" else line for line in src.split("\n"))
    for src in sources
)
run = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=os.environ)
answers = iter(run.stdout.split("@@MARK@@\n"))
for block, src in zip(blocks, sources):
    print(f"--- {block.name}")
    for line in src.split("\n"):
        if line == "#→":
            for answer in next(answers).strip("\n").split("\n"):
                if answer.strip():
                    print("# → " + answer)
        else:
            print(line)
if run.stderr.strip():
    print(run.stderr, file=sys.stderr)
    sys.exit(1)
