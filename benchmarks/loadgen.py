"""A small HTTP/1.1 load generator (fixed number of connections) run as its own process.

GET for a fixed time, every connection sending the same request::

    python -m benchmarks.loadgen URL CONNECTIONS SECONDS [HEADER ...]

POST a fixed number of forms per connection, each connection with its own headers (its
session cookie) and a body template whose ``{price}`` rises by a step and whose ``{key}`` is
fresh for every request (a bidder raising its own bid)::

    python -m benchmarks.loadgen --posts SPEC.json

SPEC: ``{"url": ..., "per_connection": N, "connections": [{"headers": [...], "body": ...,
"price": "1000.00", "step": "0.50"}, ...]}``.

Each connection sends a request, reads the whole response (Content-Length or chunked) and
sends the next one, reconnecting when the server closes (gunicorn's sync workers close after
every response, so the latency includes the connect, as it does for wrk). Prints one JSON
object: requests, seconds, requests per second, latency percentiles in ms and the status
codes seen. asyncio over raw sockets keeps the client's own cost per request small next to
the server's; a thread pool of an HTTP library in the measuring process costs the server a
good part of the machine's two cores.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
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
    host: str,
    port: int,
    next_request: Callable[[], bytes | None],
    latencies: list[float],
    codes: Counter,
) -> None:
    """Send what ``next_request`` gives until it gives None."""
    connection = None
    while (request := next_request()) is not None:
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


def _request(
    method: str, host: str, port: int, path: str, headers: list[str], body: bytes
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", *headers]
    if method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return "\r\n".join([*lines, "", ""]).encode() + body


def _summary(latencies: list[float], codes: Counter, elapsed: float) -> dict[str, object]:
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
        "latencies_ms": latencies,
    }


async def load(url: str, connections: int, seconds: float, headers: list[str]) -> dict[str, object]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    request = _request("GET", host, port, path, headers, b"")
    latencies: list[float] = []
    codes: Counter = Counter()
    start = time.perf_counter()
    deadline = start + seconds

    def until_deadline() -> bytes | None:
        return request if time.perf_counter() < deadline else None

    await asyncio.gather(
        *(_connection(host, port, until_deadline, latencies, codes) for _ in range(connections))
    )
    result = _summary(latencies, codes, time.perf_counter() - start)
    del result["latencies_ms"]
    return result


async def posts(spec: dict[str, object]) -> dict[str, object]:
    parts = urlsplit(str(spec["url"]))
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    per_connection = int(spec["per_connection"])  # type: ignore[call-overload]
    latencies: list[float] = []
    codes: Counter = Counter()

    def poster(conn: dict[str, object]) -> Callable[[], bytes | None]:
        price, step = Decimal(str(conn["price"])), Decimal(str(conn["step"]))
        sent = 0

        def next_request() -> bytes | None:
            nonlocal price, sent
            if sent == per_connection:
                return None
            body = str(conn["body"]).format(price=price, key=uuid.uuid4().hex).encode()
            price += step
            sent += 1
            headers = [*conn["headers"], "Content-Type: application/x-www-form-urlencoded"]  # type: ignore[misc]
            return _request("POST", host, port, parts.path, headers, body)

        return next_request

    start = time.perf_counter()
    await asyncio.gather(
        *(
            _connection(host, port, poster(conn), latencies, codes)
            for conn in spec["connections"]  # type: ignore[attr-defined]
        )
    )
    return _summary(latencies, codes, time.perf_counter() - start)


def main() -> int:
    if sys.argv[1] == "--posts":
        with open(sys.argv[2], encoding="utf-8") as f:
            result = asyncio.run(posts(json.load(f)))
    else:
        url, connections, seconds, *headers = sys.argv[1:]
        result = asyncio.run(load(url, int(connections), float(seconds), headers))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
