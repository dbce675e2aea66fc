"""Many certificates at once (a class roster): the costly part in worker processes, the records in chunks.

Key generation, the signature and the p12's key derivation run in worker processes, one per
core, each loading the CA once. The parent records the certificates through
:meth:`Workspace.record_drafts` (the workspace's one write protocol), a chunk per transaction.
Requests are read lazily and only a bounded number of them is in flight, so memory stays the
same whatever the batch's length. Workers die with the process that started them: killing the
parent (even with ``kill -9``) never leaves a worker holding the CA's key. A worker that dies
ends the batch with one line; what was recorded until then stays recorded.
"""

from __future__ import annotations

import collections
import ctypes
import multiprocessing
import os
import signal
import sys
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Iterator

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import Encoding

from ..errors import KittylabError
from ..pki.ca import LEAF_DAYS, CertificateAuthority
from ..pki.keys import key_to_pem
from ..pki.names import Subject
from ..pki.names import AltNames
from .workspace import Draft, Issued, draft_issue

if TYPE_CHECKING:
    from .workspace import Workspace

#: How many certificates the parent records per store transaction.
CHUNK = 64
#: Requests per piece of work sent to a worker, and pieces in flight per worker.
PIECE = 8
IN_FLIGHT = 4


@dataclass(frozen=True)
class Request:
    """One certificate of a batch (plain data, so that it goes to a worker process).

    With ``p12_password`` a p12 is written too (``legacy_p12``: 3DES with a SHA-1 MAC).
    """

    name: str
    subject: Subject
    email: tuple[str, ...] = ()
    profile: str = "client"
    key: str = "p256"
    days: int = LEAF_DAYS
    p12_password: str | None = None
    legacy_p12: bool = False
    kdf_rounds: int | None = None


def issue_many(
    workspace: "Workspace", requests: Iterable[Request], *, workers: int | None = None
) -> Iterator[tuple[Request, Issued | str]]:
    """Each request with what became of it, in order: its :class:`Issued`, or why not (one line).

    ``workers`` processes share the work (default: one per core; 1 works in this process).
    """
    ca = workspace.ca
    ready = _drafts(ca, requests, workers=workers or os.cpu_count() or 1)
    for chunk in _chunks(ready, CHUNK):
        good = [(request, draft) for request, draft in chunk if isinstance(draft, Draft)]
        recorded = dict(_record(workspace, good))
        for request, draft in chunk:
            yield request, recorded.get(request.name, draft if isinstance(draft, str) else "")


def _record(workspace: "Workspace", good: list[tuple[Request, Draft]]) -> Iterator[tuple[str, Issued | str]]:
    """Record a chunk in one transaction; if that fails (a name taken meanwhile), one by one."""
    if not good:
        return
    try:
        for issued in workspace.record_drafts([draft for _, draft in good]):
            yield issued.name, issued
        return
    except KittylabError:
        pass
    for _, draft in good:
        try:
            yield draft.name, workspace.record_drafts([draft])[0]
        except KittylabError as exc:
            yield draft.name, str(exc)


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    chunk: list = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# -- the workers ---------------------------------------------------------------------------------

_WORKER_CA: CertificateAuthority | None = None


def _start_worker(parent: int, certificate_pem: bytes, key_pem: bytes) -> None:
    """Worker start-up: die with the parent, then load the CA once.

    The key comes through a pipe from the parent, which validated it when it loaded it from the
    workspace; validating an RSA key again would cost each worker ~0.1-0.3 s (4096 bits).
    """
    global _WORKER_CA
    _die_with(parent)
    key = serialization.load_pem_private_key(key_pem, password=None, unsafe_skip_rsa_key_validation=True)
    _WORKER_CA = CertificateAuthority(x509.load_pem_x509_certificate(certificate_pem), key)


def _die_with(parent: int) -> None:
    """End this process when ``parent`` ends: the kernel's parent-death signal on Linux, else a watchdog."""
    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    else:
        def watch() -> None:
            while os.getppid() == parent:
                threading.Event().wait(0.5)
            os._exit(1)

        threading.Thread(target=watch, daemon=True, name="kittylab-parent-watch").start()
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)


def _draft(ca: CertificateAuthority, request: Request) -> Draft | str:
    """The costly part (key, signature, p12 key derivation); a problem comes back as its message."""
    try:
        draft = draft_issue(
            ca, request.name, profile=request.profile, subject=request.subject, key=request.key, days=request.days,
            names=AltNames(email=request.email), p12=request.p12_password is not None, p12_password=request.p12_password,
            legacy_p12=request.legacy_p12, kdf_rounds=request.kdf_rounds,
        )
    except KittylabError as exc:
        return str(exc)
    # The CA made the key itself: nobody sent a request, so no NAME.csr (one file less per certificate).
    draft.public.pop("csr", None)
    return draft


def _work(requests: list[Request]) -> list[tuple[str, bytes, dict, dict] | str]:
    """In a worker: draft certificates, returned as plain bytes (cryptography objects do not pickle)."""
    done: list[tuple[str, bytes, dict, dict] | str] = []
    for request in requests:
        draft = _draft(_WORKER_CA, request)
        done.append(draft if isinstance(draft, str) else
                    (draft.name, draft.certificate.public_bytes(Encoding.PEM), draft.secrets, draft.public))
    return done


def _drafts(ca: CertificateAuthority, requests: Iterable[Request], *, workers: int) -> Iterator[tuple[Request, Draft | str]]:
    """Each request with its draft (or error message), in order, made by ``workers`` processes."""
    if workers <= 1:
        for request in requests:
            yield request, _draft(ca, request)
        return
    # spawn: safe in a Jupyter kernel's threads and the same on Linux, macOS and Windows.
    context = multiprocessing.get_context("spawn")
    start = (os.getpid(), ca.certificate.public_bytes(Encoding.PEM), key_to_pem(ca.key))
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker, initargs=start)
    pending: collections.deque[tuple[list[Request], Future]] = collections.deque()
    pieces = _chunks(requests, PIECE)
    try:
        while True:
            while len(pending) < workers * IN_FLIGHT and (piece := next(pieces, None)) is not None:
                pending.append((piece, pool.submit(_work, piece)))
            if not pending:
                return
            piece, future = pending.popleft()
            try:
                results = future.result()
            except BrokenProcessPool:
                raise KittylabError(
                    "a worker process died (killed, or out of memory): the batch stopped; what was issued"
                    " until then is kept, run it again to finish"
                ) from None
            for request, result in zip(piece, results):
                if isinstance(result, str):
                    yield request, result
                    continue
                name, certificate_pem, secrets, public = result
                certificate = x509.load_pem_x509_certificate(certificate_pem)
                yield request, Draft(name, request.profile, certificate, secrets=secrets, public=public)
    finally:
        # On an interrupt (or any error) the queued work is dropped, not finished first.
        pool.shutdown(wait=True, cancel_futures=True)
