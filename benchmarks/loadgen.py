"""A small HTTP/1.1 load generator (fixed number of connections) run as its own process:

    python -m benchmarks.loadgen URL CONNECTIONS SECONDS [HEADER ...]

Each connection sends a GET, reads the whole response (Content-Length or chunked) and sends
the next one, reconnecting when the server closes (gunicorn's sync workers close after every
response, so the latency includes the connect, as it does for wrk). Prints one JSON object:
requests, seconds, requests per second, latency percentiles in ms and the status codes seen.
asyncio over raw sockets keeps the client's own cost per request small next to the server's.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from urllib.parse import urlsplit


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """The status and whether the server keeps the connection open."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, _sep, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding") == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    return status, headers.get("connection", "").lower() != "close"


async def _connection(
    host: str, port: int, request: bytes, deadline: float, latencies: list[float], codes: Counter
) -> None:
    connection = None
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        if connection is None:  # sync workers close after each response: connect anew
            connection = await asyncio.open_connection(host, port)
        reader, writer = connection
        writer.write(request)
        status, keep_alive = await _read_response(reader)
        latencies.append((time.perf_counter() - start) * 1000)
        codes[status] += 1
        if not keep_alive:
            writer.close()
            connection = None
    if connection is not None:
        connection[1].close()


async def load(url: str, connections: int, seconds: float, headers: list[str]) -> dict[str, object]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", *headers, "", ""]
    request = "\r\n".join(lines).encode()
    latencies: list[float] = []
    codes: Counter = Counter()
    start = time.perf_counter()
    deadline = start + seconds
    await asyncio.gather(
        *(_connection(host, port, request, deadline, latencies, codes) for _ in range(connections))
    )
    elapsed = time.perf_counter() - start
    ordered = sorted(latencies)

    def pct(q: float) -> float:
        return ordered[min(int(q / 100 * len(ordered)), len(ordered) - 1)] if ordered else 0.0

    return {
        "requests": len(latencies),
        "seconds": elapsed,
        "rps": len(latencies) / elapsed,
        "p50_ms": pct(50),
        "p95_ms": pct(95),
        "p99_ms": pct(99),
        "codes": {str(k): v for k, v in codes.items()},
    }


def main() -> int:
    url, connections, seconds, *headers = sys.argv[1:]
    result = asyncio.run(load(url, int(connections), float(seconds), headers))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
