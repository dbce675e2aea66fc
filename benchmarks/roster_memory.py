"""Peak memory of a class roster's batch: does the workshop's parent process stay the same size
whatever the roster's length?

    .venv/bin/python benchmarks/roster_memory.py                 # 1,000 and 100,000 rows
    .venv/bin/python benchmarks/roster_memory.py --rows 1000 10000 --p12

Each size runs ``issue_roster`` in a fresh process on a fresh workspace (P-256 CA and keys, two
workers) and reports the parent's peak resident memory (``ru_maxrss``, which includes Python and
cryptography themselves), the largest worker's, and the wall-clock time. By default the batch
runs with fast settings: no p12 files (``p12=False``: no PBKDF2 rounds), which leaves every
other part of the batch (keys, certificates, the store's transactions, the ledger, handout
pages, the summary) as it is; ``--p12`` adds modern p12 files with 2,048 PBKDF2 rounds.
The results go to stdout as a Markdown table (``--output FILE`` appends them to a file).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Runs in the measured process: the batch, then its own and its children's peak memory.
_MEASURED = """
import json, resource, sys
from kittylab import Workspace
from kittylab.workshop.roster import issue_roster
home, roster, p12 = sys.argv[1], sys.argv[2], sys.argv[3] == "p12"
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with Workspace(home) as workspace:
    result = issue_roster(workspace, roster, p12=p12, kdf_rounds=2048 if p12 else None, workers=2,
                          url="https://workshop.test:8443/", progress=False)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # before the names issued are read back
print(json.dumps({"issued": len(result.issued), "start_kib": before, "parent_kib": peak,
                  "worker_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
"""


def write_roster(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8") as handle:
        handle.write("name,email,ou\n")
        for n in range(rows):
            handle.write(f"Participant Ñandú {n},p{n}@class.kitty.test,Group {n % 40}\n")


def measure(rows: int, *, p12: bool, folder: Path | None) -> dict:
    with tempfile.TemporaryDirectory(prefix="kittylab-roster-memory-", dir=folder) as tmp:
        home = Path(tmp) / "ws"
        setup = f"from kittylab import Workspace\nWorkspace({str(home)!r}).init_ca('/CN=kitty-ca', key='p256')"
        subprocess.run([sys.executable, "-c", setup], check=True, cwd=ROOT)
        roster = Path(tmp) / "class.csv"
        write_roster(roster, rows)
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-c", _MEASURED, str(home), str(roster), "p12" if p12 else "no"],
                              check=True, capture_output=True, text=True, cwd=ROOT)
        figures = json.loads(done.stdout.strip().splitlines()[-1])
        figures.update(rows=rows, seconds=time.monotonic() - started)
        return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1000, 100000])
    parser.add_argument("--p12", action="store_true", help="modern p12 files (2,048 PBKDF2 rounds) too")
    parser.add_argument("--output", type=Path, help="append the table to this file")
    parser.add_argument("--dir", type=Path, help="where the workspaces go (e.g. /dev/shm: a tmpfs, where fsync costs"
                                                 " nothing; memory is the same, the time is not)")
    args = parser.parse_args()
    settings = "P-256 keys, 2 workers, " + ("modern p12 (2,048 rounds)" if args.p12 else "no p12 (fast settings)")
    settings += f", workspace in {args.dir}" if args.dir else ""
    lines = [f"Roster batch memory ({settings}; peak resident set, ru_maxrss):", "",
             "| rows | issued | parent before the batch | parent peak | per row above the start | largest worker | wall clock |",
             "|---|---|---|---|---|---|---|"]
    for rows in args.rows:
        f = measure(rows, p12=args.p12, folder=args.dir)
        per_row = (f["parent_kib"] - f["start_kib"]) * 1024 / rows
        lines.append(f"| {rows:,} | {f['issued']:,} | {f['start_kib'] / 1024:.0f} MiB | {f['parent_kib'] / 1024:.0f} MiB"
                     f" | {per_row:,.0f} bytes | {f['worker_kib'] / 1024:.0f} MiB | {f['seconds']:.0f} s |")
        print(lines[-1], file=sys.stderr, flush=True)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.output:
        with args.output.open("a", encoding="utf-8") as handle:
            handle.write("\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
