"""Workspace.issue_many: a batch on worker processes, recorded in order, workers that die with their parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from kittylab.pki.names import Subject
from kittylab.workspace.batch import Request

ROOT = Path(__file__).resolve().parents[2]

# A parent that starts a busy child which arms the parent-death signal, then waits to be killed.
PARENT = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", CHILD.format(parent=__import__("os").getpid())])
print(child.pid, flush=True)
time.sleep(60)
"""
CHILD = """
from kittylab.workspace.batch import _die_with
_die_with({parent})
print("armed", flush=True)
while True:
    sum(range(10000))  # busy, as a worker deriving a p12 key is
"""


def test_a_worker_dies_with_its_parent_even_while_busy():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    parent = subprocess.Popen([sys.executable, "-c", f"CHILD = {CHILD!r}\n" + PARENT], stdout=subprocess.PIPE,
                              text=True, env=env)
    child = int(parent.stdout.readline())
    assert parent.stdout.readline() == "armed\n"  # the child runs, its parent-death signal armed
    time.sleep(0.2)
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    parent.stdout.close()
    deadline = time.monotonic() + 5
    while Path(f"/proc/{child}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    alive = Path(f"/proc/{child}").exists()
    if alive:
        os.kill(child, signal.SIGKILL)
    assert not alive, "the worker outlived its parent"


def test_a_batch_comes_back_in_order_with_each_problem_on_its_request(workspace):
    requests = [Request(f"p{n}", Subject(cn=f"Person {n}"), email=(f"p{n}@kitty.test",)) for n in range(20)]
    requests[7] = Request("bad name!", Subject(cn="Bad"))
    results = list(workspace.issue_many(iter(requests), workers=2))
    assert [request.name for request, _ in results] == [request.name for request in requests]
    assert "bad name" in results[7][1]
    issued = [outcome for n, (_, outcome) in enumerate(results) if n != 7]
    assert all(outcome.record.name == f"p{n}" for n, outcome in zip([n for n in range(20) if n != 7], issued))
    assert len(workspace.records(include_ca=False)) == 19


def test_a_store_written_before_the_name_index_gets_it_with_its_next_change(workspace):
    """A roster looks up every newcomer by name: without the index each lookup scans the table (N^2)."""
    import sqlite3

    path = workspace.home / "kittylab.sqlite3"
    workspace.close()
    db = sqlite3.connect(path)
    db.execute("DROP INDEX by_name")
    db.execute("PRAGMA user_version = 2")
    db.commit()
    db.close()
    from kittylab import Workspace

    with Workspace(workspace.home) as again:
        again.issue("newcomer", profile="client", key="p256")
    db = sqlite3.connect(path)
    plan = db.execute("EXPLAIN QUERY PLAN SELECT * FROM certificates WHERE name = ? ORDER BY issued_at DESC",
                      ("x",)).fetchall()
    db.close()
    assert any("by_name" in str(step) for step in plan), plan
