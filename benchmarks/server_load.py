#!/usr/bin/env python3
"""picture-server beside nginx: requests per second and p50/p99 latency with client certificates.

Both serve the same gallery page over HTTPS with the same server certificate, the same CA and CRL,
and require the same client certificate. Concurrent clients are separate processes (so the load
generator is not held back by one interpreter's lock), each with its own TLS context loaded from
eager-client's p12. Two modes:

- ``keep-alive``: one connection per client, many requests on it (the request path),
- ``handshake``: a new connection, so a full TLS handshake with client authentication, per request.

nginx runs as ``kittylab webconfig nginx`` writes it (one worker process). Each figure is the
median over ``--rounds`` runs; the last lines give the ratios between the two servers. On a shared 2-core machine the load generator competes with the servers for CPU:
compare the ratio, not the absolute numbers.

    python benchmarks/server_load.py [--clients 8] [--requests 800] [--rounds 3] [--key p256|rsa2048]
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kittylab import Workspace  # noqa: E402
from kittylab.net.client import client_context  # noqa: E402
from kittylab.net.server import PictureServer  # noqa: E402
from kittylab.net.webconfig import write_site  # noqa: E402
from kittylab.ui.sites import RunningSite  # noqa: E402

PASSWORD = "bench-pass"
MODES = ("keep-alive", "handshake")


def client_worker(
    port: int, p12: str, ca: str, requests: int, mode: str, start_at: float, password: str = PASSWORD
) -> tuple[list[float], float, float]:
    """One client process: wait for the common start, then GET / ``requests`` times; return latencies."""
    context = client_context(p12=p12, password=password, ca=ca)
    latencies = []
    connection = None
    if mode == "keep-alive":  # the one handshake happens before the clock starts
        connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=30)
        connection.connect()
    while time.time() < start_at:
        time.sleep(0.001)
    began = time.perf_counter()
    for _ in range(requests):
        sent = time.perf_counter()
        if connection is None:
            connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=30)
        connection.request("GET", "/")
        answer = connection.getresponse()
        body = answer.read()
        if answer.status != 200 or b"kl-greeting" not in body:
            raise RuntimeError(f"unexpected answer {answer.status} from port {port}")
        if mode == "handshake":
            connection.close()
            connection = None
        latencies.append(time.perf_counter() - sent)
    if connection is not None:
        connection.close()
    return latencies, began, time.perf_counter()


def measure(pool, port: int, p12: Path, ca: Path, *, clients: int, requests: int, mode: str) -> dict:
    each = max(1, requests // clients)
    start_at = time.time() + 1.5  # every client has loaded its p12 and waits for the same moment
    results = pool.starmap(client_worker, [(port, str(p12), str(ca), each, mode, start_at)] * clients)
    latencies = sorted(latency for result, _, _ in results for latency in result)
    wall = max(end for _, _, end in results) - min(began for _, began, _ in results)
    return {
        "rps": len(latencies) / wall,
        "p50": latencies[len(latencies) // 2] * 1000,
        "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
    }


def median_of(runs: list[dict]) -> dict:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8, help="concurrent client processes (default 8)")
    parser.add_argument("--requests", type=int, default=800, help="requests per measurement (default 800)")
    parser.add_argument("--rounds", type=int, default=3, help="measurements per figure; the median is shown")
    parser.add_argument("--key", default="p256", choices=("p256", "rsa2048"), help="key type of every certificate")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="kittylab-bench-") as folder:
        home = Path(folder)
        home.chmod(0o755)  # Apache-style worker users; nginx run as root keeps its workers as nobody
        workspace = Workspace(home / "ws")
        workspace.init_ca("/O=Kitty Inc/CN=kitty-ca", key=args.key)
        workspace.issue("picture-server", profile="server", key=args.key, dns=["localhost"], ip=["127.0.0.1"])
        client = workspace.issue("eager-client", profile="client", key=args.key, p12=True, p12_password=PASSWORD)
        p12, ca = client.files["p12"], workspace.ca_certificate_path
        site = write_site("nginx", workspace, home / "nginx", port=free_port())

        print(f"picture-server and nginx, mutual TLS, {args.key} keys, GET / (the gallery page), "
              f"{args.clients} concurrent clients, {args.requests} requests per run, median of {args.rounds} runs")
        results: dict[tuple[str, str], dict] = {}
        context = multiprocessing.get_context("spawn")
        with context.Pool(args.clients) as pool, PictureServer(workspace) as picture, RunningSite(site) as nginx:
            pool.starmap(client_worker, [(picture.port, str(p12), str(ca), 2, "handshake", 0.0)] * args.clients)
            for mode in MODES:
                for name, port in (("picture-server", picture.port), ("nginx", nginx.site.port)):
                    runs = [measure(pool, port, p12, ca, clients=args.clients, requests=args.requests, mode=mode)
                            for _ in range(args.rounds)]
                    results[(name, mode)] = median_of(runs)
            refused = len(picture.refusals)
        workspace.close()

    print(f"\n{'server':<16}{'mode':<12}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}")
    for (name, mode), figures in results.items():
        print(f"{name:<16}{mode:<12}{figures['rps']:>10.0f}{figures['p50']:>10.2f}{figures['p99']:>10.2f}")
    print()
    for mode in MODES:
        ours, theirs = results[("picture-server", mode)], results[("nginx", mode)]
        print(f"{mode}: nginx / picture-server = {theirs['rps'] / ours['rps']:.2f}x the requests per second; "
              f"picture-server / nginx latency = {ours['p50'] / theirs['p50']:.2f}x at p50, "
              f"{ours['p99'] / theirs['p99']:.2f}x at p99")
    print(f"picture-server refusals during the run: {refused} (every client was valid)")
    return 0 if refused == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
