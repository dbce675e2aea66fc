"""Publishing each CA's CRL and certificate over plain HTTP, where ``init --crl-url`` points (``kittylab publish``).

``GET /NAME.crl`` answers CA NAME's current CRL (DER, ``application/pkix-crl``, RFC 5280 4.2.1.13)
and ``GET /NAME.crt`` its certificate (DER, ``application/pkix-cert``, RFC 5280 4.2.2.1), read
from the workspace at each request: a revocation or a new intermediate shows at once. Both are
signed, so plain HTTP is the rule (an https URL would need a revocation check of its own). A
CRL is a static file: any web server or CDN can serve the same bytes, which is how kittylab
scales past one machine.
"""

from __future__ import annotations

import threading

from cryptography.hazmat.primitives import serialization

from .http_service import HttpService, QuietHandler

#: What each published suffix is, by its media type (RFC 2585, section 4).
MEDIA_TYPES = {"crl": "application/pkix-crl", "crt": "application/pkix-cert"}


class Publisher(HttpService):
    """Serves the CRLs and CA certificates of the workspace in folder ``home``.

    ``with Publisher(ws.home) as publisher: publisher.url``. ``log`` gets one line per request.
    """

    thread_name = "kittylab-publish"

    def prepare(self) -> None:
        self.workspace.ca_record()  # a workspace without a CA has nothing to publish
        self._lock = threading.Lock()

    def handler(self) -> type[QuietHandler]:
        return _handler_for(self)

    def paths(self) -> list[str]:
        """Every path published now: ``/NAME.crt`` and ``/NAME.crl`` of each CA."""
        with self._lock:
            return [f"/{name}.{suffix}" for name in self.workspace.ca_names() for suffix in ("crt", "crl")]

    def document(self, path: str) -> tuple[str, bytes] | None:
        """The media type and DER bytes published at ``path`` now, or None."""
        name, _, suffix = path.lstrip("/").rpartition(".")
        if suffix not in MEDIA_TYPES:
            return None
        with self._lock:
            if name not in self.workspace.ca_names():
                return None
            if suffix == "crt":
                published = self.workspace.ca_record(name).certificate
            else:
                published = self.workspace.current_crl(name)
        if published is None:
            return None
        return MEDIA_TYPES[suffix], published.public_bytes(serialization.Encoding.DER)


def _handler_for(publisher: Publisher) -> type[QuietHandler]:
    class Handler(QuietHandler):
        server_version = "kittylab-publish"
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            found = publisher.document(self.path.split("?", 1)[0])
            if publisher.log:
                publisher.log(f"{self.command} {self.path[:200]}: {'200' if found else '404'}")
            if found is None:
                paths = " ".join(publisher.paths())
                self.send_body(404, "text/plain; charset=utf-8", f"not published here; try {paths}\n".encode())
                return
            self.send_body(200, *found)

        do_HEAD = do_GET

    return Handler
