"""Plain-HTTP services of a workspace: the OCSP responder and the publisher of CRLs and CA certificates.

Each runs a :class:`ThreadingHTTPServer` in a background thread (``with Service(...) as s: s.url``)
or in the caller's thread (:meth:`HttpService.serve_forever`, for the command line). Every
connection gets an idle timeout, as the picture-server's have: a client that connects and sends
nothing, or stalls in the middle of a request, is dropped instead of holding a thread forever.
"""

from __future__ import annotations

import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from ..errors import KittylabError
from ..workspace.workspace import PassphraseSource, Workspace

#: Seconds a connection may sit idle (between requests, or in the middle of one) before it is closed.
IDLE_TIMEOUT = 30.0


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler with the idle timeout that logs nothing by itself and sends whole bodies."""

    timeout = IDLE_TIMEOUT

    def send_body(self, code: int, content_type: str, body: bytes, *, close: bool = False) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's name
        pass


class Background:
    """Something that runs in the background between ``start()`` (which returns it) and ``stop()``:
    ``with thing as running:`` starts it and stops it at the end."""

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class HttpService(Background):
    """The workspace in folder ``home`` served over plain HTTP by the subclass's :meth:`handler`.

    The service opens the folder on its own (its own store connection, as another process would),
    so it sees each change as soon as it is saved, and closes it when it stops. ``ca_passphrase``
    and ``passphrases`` unlock CA keys, for a service that signs. Listens on 127.0.0.1 by default;
    ``port=0`` picks a free port. ``log`` gets one line per request.
    """

    thread_name = "kittylab-http"

    def __init__(
        self,
        home: str | os.PathLike,
        *,
        ca_passphrase: str | None = None,
        passphrases: PassphraseSource | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.workspace = workspace = Workspace(home, ca_passphrase=ca_passphrase, passphrases=passphrases)
        self.log = log
        try:
            self.prepare()
        except KittylabError:
            workspace.close()
            raise
        try:
            self.httpd = ThreadingHTTPServer((host, port), self.handler())
        except (OSError, OverflowError) as exc:
            workspace.close()
            raise KittylabError(f"cannot listen on {host}:{port}: {getattr(exc, 'strerror', None) or exc}") from None
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    def prepare(self) -> None:
        """Check that the workspace has what the service serves (a :class:`KittylabError` if not), and
        set up what the handler needs, before the service listens."""

    def handler(self) -> type[BaseHTTPRequestHandler]:
        """The request handler class, bound to this service."""
        raise NotImplementedError

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self.httpd.server_address[0]}:{self.port}"

    def start(self) -> "HttpService":
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1}, name=self.thread_name, daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until interrupted (the command line)."""
        try:
            self.httpd.serve_forever()
        finally:
            self.httpd.server_close()
            self.workspace.close()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.workspace.close()
