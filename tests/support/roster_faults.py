"""Run ``kittylab roster ...`` in this process with a fault planted at one point of the batch.

``python -m support.roster_faults POINT [N] -- ARGS...`` (with ``tests/`` and the repository on
PYTHONPATH): the process SIGKILLs itself the ``N``-th time (default 1) it reaches ``POINT``, after
writing the pids of its child processes (the workers) to ``$ROSTER_FAULT_CHILDREN``. The point
``worker`` instead kills a worker process the ``N``-th time a worker starts a piece of work.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
from pathlib import Path

#: Where a roster run can be cut: (module, object, attribute) patched to kill before it runs
#: (``attribute>``: right after it returned).
POINTS = {
    # the ledger has recorded the participant and their password; nothing is signed yet
    "claimed": ("kittylab.workshop.ledger", "Ledger", "claim"),
    # keys are written, the store's transaction is about to commit
    "before-commit": ("kittylab.workspace.store", "Store", "add"),
    # the store has committed (kill right after the commit returns): the .crt and .p12 files come next
    "after-commit": ("kittylab.workspace.store", "Store", "_commit>"),
    # the p12 is on disk: the ledger is about to learn the serial
    "ledger-issued": ("kittylab.workshop.ledger", "Ledger", "issued"),
    # the handout page is about to be written
    "handout": ("kittylab.workshop.roster", "_Handouts", "_write"),
    # the handouts are written; the ledger is about to mark them handed out
    "handed-out": ("kittylab.workshop.ledger", "Ledger", "handed_out"),
    # everything is done but the summary
    "summary": ("kittylab.workshop.roster", None, "write_summary"),
}


def children() -> list[int]:
    """The pids of this process's children (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == os.getpid():
                found.append(int(entry.name))
    return found


def die() -> None:
    target = os.environ.get("ROSTER_FAULT_CHILDREN")
    if target:
        Path(target).write_text(" ".join(map(str, children())))
    os.kill(os.getpid(), signal.SIGKILL)


def _counting(function, nth: int, *, after: bool = False):
    """``function`` that kills the process on its ``nth`` call: before it runs, or ``after`` it returned."""
    calls = {"n": 0}

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == nth and not after:
            die()
        result = function(*args, **kwargs)
        if calls["n"] == nth and after:
            die()
        return result

    return wrapper


def killing_work(requests):
    """A worker's piece of work that kills its worker the N-th time a piece starts (counted across workers in a file)."""
    from kittylab.workspace.batch import _work

    counter = Path(os.environ["ROSTER_FAULT_COUNTER"])
    with open(counter, "a") as handle:
        handle.write(".")
    if counter.stat().st_size == int(os.environ["ROSTER_FAULT_NTH"]):
        os.kill(os.getpid(), signal.SIGKILL)
    return _work(requests)


def plant(point: str, nth: int) -> None:
    import importlib

    if point == "worker":
        from kittylab.workspace import batch

        os.environ["ROSTER_FAULT_NTH"] = str(nth)  # the workers inherit it
        batch._work = killing_work  # submitted by reference: workers import this module and run it
        return
    module_name, owner_name, attribute = POINTS[point]
    after = attribute.endswith(">")
    attribute = attribute.rstrip(">")
    owner = importlib.import_module(module_name)
    if owner_name:
        owner = getattr(owner, owner_name)
    setattr(owner, attribute, _counting(getattr(owner, attribute), nth, after=after))


def main(argv: list[str]) -> int:
    split = argv.index("--")
    point, *rest = argv[:split]
    plant(point, int(rest[0]) if rest else 1)
    from kittylab.cli.main import main as kittylab

    return kittylab(argv[split + 1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
