"""Running nginx or Apache for a lesson (and for tests and benchmarks): a private instance in the foreground.

The library only writes configurations (:mod:`kittylab.net.webconfig`); running a web server is
what a lesson does to show them working, so it lives here with the notebook's other helpers.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from ..errors import KittylabError
from ..net.http_service import Background
from ..net.webconfig import Site, check_kind

APACHE_BINARIES = ("apache2", "httpd")


def web_server_binary(kind: str) -> str:
    names = ("nginx",) if check_kind(kind) == "nginx" else APACHE_BINARIES
    for name in names:
        path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin:/sbin")
        if path:
            return path
    package = "nginx" if kind == "nginx" else "apache2"
    raise KittylabError(f"{names[0]} is not installed (apt-get install {package})")


class RunningSite(Background):
    """A private nginx or Apache serving a :class:`Site` in the foreground, as a child process.

    ``with RunningSite(site) as web:`` starts it and waits until it accepts connections;
    ``web.reload()`` makes it read the CRL again (after a revocation); leaving the block stops it.
    """

    def __init__(self, site: Site, *, start_timeout: float = 15.0) -> None:
        self.site = site
        self.start_timeout = start_timeout
        self.process: subprocess.Popen | None = None
        self.log_path = site.config.parent / f"{site.kind}.out"

    def start(self) -> "RunningSite":
        binary = web_server_binary(self.site.kind)
        folder = self.site.config.parent
        if self.site.kind == "nginx":
            command = [binary, "-p", f"{folder}/", "-c", str(self.site.config), "-e", "stderr", "-g", "daemon off;"]
        else:
            command = [binary, "-d", str(folder), "-f", str(self.site.config), "-DFOREGROUND"]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            start_new_session=True)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise KittylabError(f"{self.site.kind} did not start: {self.log_tail()}")
            try:
                socket.create_connection((self.site.host, self.site.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise KittylabError(f"{self.site.kind} did not listen on port {self.site.port} within {self.start_timeout:g} s")

    def reload(self, *, timeout: float = 15.0) -> None:
        """Re-read the configuration, certificates and CRL without dropping the listening socket.

        Returns once the workers started before the reload are gone: until then one of them may
        still accept a connection with the old CRL.
        """
        old_workers = self._workers()
        self.process.send_signal(signal.SIGHUP if self.site.kind == "nginx" else signal.SIGUSR1)
        deadline = time.monotonic() + timeout
        while old_workers & self._workers():
            if time.monotonic() > deadline:
                raise KittylabError(f"{self.site.kind}'s old workers did not stop within {timeout:g} s of the reload")
            time.sleep(0.05)

    def _workers(self) -> set[int]:
        """The process ids of the server's worker processes (the children of its main process)."""
        children = set()
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if fields[1] == str(self.process.pid) and fields[0] != "Z":
                children.add(int(stat.parent.name))
        return children

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGQUIT if self.site.kind == "nginx" else signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def log_tail(self, lines: int = 15) -> str:
        texts = []
        for path in (self.log_path, self.site.config.parent / "error.log"):
            if path.exists():
                texts += path.read_text(errors="replace").splitlines()[-lines:]
        return " | ".join(texts[-lines:])

    @property
    def url(self) -> str:
        return self.site.url
