"""Many lightweight `/events` clients in one process: `python -m bench.sseclients`.

Each client is a bare asyncio protocol (no HTTP library), so the load generator costs as
little as possible and the latency it sees is the server's. A change written by the
benchmark carries a marker `bench-mark-<n>-<monotonic ns at write>`; every client records,
once per marker, how long after the write it arrived (CLOCK_MONOTONIC is system-wide on
Linux, so the writer's and the clients' clocks agree). Stalled clients connect, send their
request and never read, the way a frozen browser tab behaves.

Prints one JSON line to stdout when it receives SIGTERM:
`{"connected", "latencies_ms": [...], "bytes", "closed_by_server"}`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import socket
import time
from urllib.parse import urlsplit

MARKER = re.compile(rb"bench-mark-(\d+)-(\d+)")
CARRY = 64
LATE = open(os.environ["BENCH_LATE_LOG"], "a") if os.environ.get("BENCH_LATE_LOG") else None  # noqa: SIM115


class Reader(asyncio.Protocol):
    """Reads an SSE stream and records each marker's latency the first time it is seen."""

    def __init__(
        self,
        request: bytes,
        seen: bytearray,
        latencies: list[float],
        stats: dict[str, int],
        first: int = 0,
    ):
        self.request = request
        self.first = first
        """Markers numbered below this are an earlier run's, still shown on a row."""
        self.seen = seen
        self.latencies = latencies
        self.stats = stats
        self.tail = b""
        self.connected = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        now = time.monotonic_ns()
        if not self.connected:
            self.connected = True
            self.stats["connected"] += 1
        self.stats["bytes"] += len(data)
        chunk = self.tail + data
        for match in MARKER.finditer(chunk):
            if match.end() == len(chunk):
                break  # the marker may go on in the next chunk
            number, written = int(match[1]) - self.first, int(match[2])
            if 0 <= number < len(self.seen) and not self.seen[number]:
                self.seen[number] = 1
                self.latencies.append((now - written) / 1e6)
                if LATE and (now - written) > 1e9:
                    context = chunk[max(0, match.start() - 300) : match.end() + 50]
                    LATE.write(f"{number} {(now - written) / 1e6:.0f} ms: {context!r}\n")
        self.tail = chunk[-CARRY:]

    def connection_lost(self, exc: Exception | None) -> None:
        self.stats["closed_by_server"] += 1


async def _stalled(host: str, port: int, request: bytes) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (host, port))
    await asyncio.get_running_loop().sock_sendall(sock, request)
    return sock


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url", help="the /events URL")
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--stalled", type=int, default=0)
    parser.add_argument("--markers", type=int, default=100_000)
    parser.add_argument("--first", type=int, default=0, help="the first marker number to count")
    parser.add_argument("--header", action="append", default=[])
    args = parser.parse_args()
    parts = urlsplit(args.url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    headers = "".join(f"{h}\r\n" for h in args.header)
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: text/event-stream\r\n{headers}\r\n"
    ).encode()
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    stats = {"connected": 0, "bytes": 0, "closed_by_server": 0}
    transports = []
    for _ in range(args.clients):
        seen = bytearray(args.markers)
        transport, _protocol = await loop.create_connection(
            lambda seen=seen: Reader(request, seen, latencies, stats, args.first), host, port
        )
        transports.append(transport)
    stalled = [await _stalled(host, port, request) for _ in range(args.stalled)]
    print(json.dumps({"ready": True}), flush=True)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    for transport in transports:
        transport.close()
    for sock in stalled:
        sock.close()
    print(json.dumps({**stats, "latencies_ms": latencies}), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
