"""GET /events under load: subscribers attached while clients record turns.

    python -m bench.events sqlite|postgres STORE --port P [--quick]

Writes go to one server; subscribers listen on it (SQLite) or on a second
server on the same database (PostgreSQL, so every event crosses servers by
LISTEN/NOTIFY). Prints JSON: write throughput without and with subscribers,
and the write-to-delivery latency (from the write's acknowledgement to a
subscriber reading its event; 0 when the event came first) at p50 and p99.
A few subscribers time what they read; the rest only drain their streams.
The rounds alternate writing without and with subscribers; the ratio is the
median of the rounds'.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from bench.http import start_server
from tests.builders import NEW_SESSION_BODY

WRITERS = 64
SUBSCRIBERS = 200
TIMED_SUBSCRIBERS = 10
ROUNDS = 5


def turn_body(number: int) -> dict[str, Any]:
    return {
        "utterances": [
            {"turn_number": number, "speaker": "interviewer", "text": f"Why? ({number})"},
            {"turn_number": number, "speaker": "respondent", "text": "Because it matters."},
        ],
        "state_patch": {"turn_count": number},
    }


class _Connection:
    """One keep-alive HTTP/1.1 connection that posts JSON and reads the status.

    An HTTP client library spends about a millisecond of CPU a request; 64
    writers through one would use a whole core, and the writers' rate would
    measure the client, not the server.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def open(cls, url: str) -> _Connection:
        address = httpx.URL(url)
        return cls(*await asyncio.open_connection(address.host, address.port or 80))

    async def post(self, path: str, body: Any) -> tuple[int, bytes]:
        payload = json.dumps(body).encode()
        self._writer.write(
            f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n".encode()
            + payload
        )
        head = await self._reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = int(re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)[1])  # type: ignore[index]
        return status, await self._reader.readexactly(length)

    def close(self) -> None:
        self._writer.close()


async def write_for(url: str, seconds: float, sent: dict[tuple[str, int], float]) -> int:
    """WRITERS clients, a session each, recording turns for `seconds`; the turns written."""
    connections = [await _Connection.open(url) for _ in range(WRITERS)]
    try:
        sessions = []
        for connection in connections:
            status, body = await connection.post("/sessions", NEW_SESSION_BODY)
            assert status == 201, body
            sessions.append(json.loads(body)["id"])
        deadline = time.perf_counter() + seconds
        counts = [0] * WRITERS

        async def writer(index: int) -> None:
            number = 0
            while time.perf_counter() < deadline:
                number += 1
                status, body = await connections[index].post(
                    f"/sessions/{sessions[index]}/turns", turn_body(number)
                )
                assert status == 201, body
                sent[(sessions[index], number)] = time.time()
                counts[index] += 1

        await asyncio.gather(*(writer(index) for index in range(WRITERS)))
    finally:
        for connection in connections:
            connection.close()
    return sum(counts)


async def subscribe(url: str, received: list[tuple[str, int, float]], ready: asyncio.Event) -> None:
    """A subscriber that notes when each turn's event reached it."""
    async with (
        httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(30, read=None)) as client,
        client.stream("GET", "/events") as response,
    ):
        ready.set()
        async for line in response.aiter_lines():
            if line.startswith("data: ") and "session.turn_recorded" in line:
                event = json.loads(line[6:])
                received.append((event["session_id"], event["data"]["turn_number"], time.time()))


class _Discard(asyncio.Protocol):
    """A subscriber's connection that throws away what it reads, once its answer has begun.

    An HTTP client parsing each chunk would spend more of the shared CPU than
    the server spends sending it; the writers' rate would then measure the
    subscribers, not the server.
    """

    def __init__(self, ready: asyncio.Future[None]) -> None:
        self._ready = ready

    def data_received(self, data: bytes) -> None:
        if not self._ready.done():
            if data.startswith(b"HTTP/1.1 200"):
                self._ready.set_result(None)
            else:
                self._ready.set_exception(RuntimeError(data[:200].decode(errors="replace")))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._ready.done():
            self._ready.set_exception(ConnectionError("closed before the stream began"))


@asynccontextmanager
async def subscribers(url: str, received: list[tuple[str, int, float]]) -> AsyncIterator[None]:
    """SUBSCRIBERS streams open on `url`, TIMED_SUBSCRIBERS of them timing turns' events."""
    address = httpx.URL(url)
    request = f"GET /events HTTP/1.1\r\nHost: {address.netloc.decode()}\r\n\r\n".encode()
    loop = asyncio.get_running_loop()
    drains: list[asyncio.Transport] = []
    readies: list[Awaitable[Any]] = []
    timed: list[asyncio.Task[None]] = []
    try:
        for _ in range(SUBSCRIBERS - TIMED_SUBSCRIBERS):
            ready: asyncio.Future[None] = loop.create_future()
            transport, _ = await loop.create_connection(
                partial(_Discard, ready), address.host, address.port or 80
            )
            transport.write(request)
            drains.append(transport)
            readies.append(ready)
        for _ in range(TIMED_SUBSCRIBERS):
            began = asyncio.Event()
            timed.append(asyncio.create_task(subscribe(url, received, began)))
            readies.append(began.wait())
        await asyncio.gather(*readies)
        yield
    finally:
        for transport in drains:
            transport.close()
        for task in timed:
            task.cancel()
        await asyncio.gather(*timed, return_exceptions=True)


def _round(
    without: int, attached: int, sent: dict[tuple[str, int], float], received: list[Any]
) -> tuple[float, list[float], int]:
    """A round's throughput ratio, its delivery latencies (ms) and the deliveries expected."""
    latencies = [
        max(0.0, at - sent[(session_id, turn)]) * 1000
        for session_id, turn, at in received
        if (session_id, turn) in sent
    ]
    return (attached / without if without else 0.0), latencies, len(sent) * TIMED_SUBSCRIBERS


async def measure(write_url: str, read_url: str, seconds: float) -> dict[str, Any]:
    """ROUNDS rounds, each writing for `seconds` without subscribers, then with them:
    the machine's drift falls on both sides of each round's ratio."""
    ratios: list[float] = []
    latencies: list[float] = []
    rates: dict[str, list[float]] = {"without": [], "with": []}
    expected = 0
    for _ in range(ROUNDS):
        without = await write_for(write_url, seconds, {})
        received: list[tuple[str, int, float]] = []
        sent: dict[tuple[str, int], float] = {}
        async with subscribers(read_url, received):
            await asyncio.sleep(0.5)
            attached = await write_for(write_url, seconds, sent)
            await asyncio.sleep(1)
        ratio, delivered, wanted = _round(without, attached, sent, received)
        ratios.append(ratio)
        latencies += delivered
        expected += wanted
        rates["without"].append(without / seconds)
        rates["with"].append(attached / seconds)
    latencies.sort()
    return {
        "writes_per_s_without": statistics.median(rates["without"]),
        "writes_per_s_with": statistics.median(rates["with"]),
        "throughput_ratio": statistics.median(ratios),
        "throughput_ratios": ratios,
        "delivery_p50_ms": statistics.median(latencies) if latencies else float("nan"),
        "delivery_p99_ms": latencies[int(len(latencies) * 0.99) - 1] if latencies else float("nan"),
        "delivered_share": len(latencies) / expected if expected else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.events")
    parser.add_argument("engine", choices=["sqlite", "postgres"])
    parser.add_argument("store")
    parser.add_argument("--port", type=int, default=18_490)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    seconds = 1.0 if args.quick else 4.0
    # The servers run on core 0; the clients on the other, so that they take no
    # time from the servers.
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {1})
    logs = Path(tempfile.mkdtemp(prefix="bench-events-"))
    if args.engine == "sqlite":
        env = {"DATABASE_PATH": args.store, "DATABASE_URL": ""}
    else:
        env = {"DATABASE_URL": args.store, "DATABASE_POOL_SIZE": "10"}
    servers = [start_server(env, args.port, logs / "writer.log", core=0)]
    if args.engine == "postgres":
        servers.append(start_server(env, args.port + 1, logs / "reader.log", core=0))
    try:
        result = asyncio.run(measure(servers[0].url, servers[-1].url, seconds))
        result["server_errors"] = sum(server.server_errors() for server in servers)
    finally:
        for server in servers:
            server.stop()
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
