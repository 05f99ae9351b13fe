"""GET /events under load: subscribers attached while clients record turns.

    python -m bench.events sqlite|postgres STORE --port P [--quick]

Writes go to one server; subscribers listen on it (SQLite) or on a second
server on the same database (PostgreSQL, so every event crosses servers by
LISTEN/NOTIFY). Prints JSON: write throughput without and with subscribers,
and the write-to-delivery latency (from the write's acknowledgement to a
subscriber reading its event; 0 when the event came first) at p50 and p99.
A few subscribers time what they read; the rest only drain their streams,
in a process of their own, so that the writers' process stays light.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.http import start_server
from tests.builders import NEW_SESSION_BODY

WRITERS = 64
SUBSCRIBERS = 200
TIMED_SUBSCRIBERS = 10


def turn_body(number: int) -> dict[str, Any]:
    return {
        "utterances": [
            {"turn_number": number, "speaker": "interviewer", "text": f"Why? ({number})"},
            {"turn_number": number, "speaker": "respondent", "text": "Because it matters."},
        ],
        "state_patch": {"turn_count": number},
    }


async def write_for(url: str, seconds: float, sent: dict[tuple[str, int], float]) -> int:
    """WRITERS clients, a session each, recording turns for `seconds`; the turns written."""
    limits = httpx.Limits(max_connections=WRITERS)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        sessions = [
            (await client.post("/sessions", json=NEW_SESSION_BODY)).json()["id"]
            for _ in range(WRITERS)
        ]
        deadline = time.perf_counter() + seconds
        counts = [0] * WRITERS

        async def writer(index: int) -> None:
            number = 0
            while time.perf_counter() < deadline:
                number += 1
                response = await client.post(
                    f"/sessions/{sessions[index]}/turns", json=turn_body(number)
                )
                response.raise_for_status()
                sent[(sessions[index], number)] = time.time()
                counts[index] += 1

        await asyncio.gather(*(writer(index) for index in range(WRITERS)))
    return sum(counts)


async def subscribe(
    url: str, timed: bool, received: list[tuple[str, int, float]], ready: asyncio.Event
) -> None:
    async with (
        httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(30, read=None)) as client,
        client.stream("GET", "/events") as response,
    ):
        ready.set()
        if not timed:
            async for _ in response.aiter_raw():
                pass
            return
        async for line in response.aiter_lines():
            if line.startswith("data: ") and "session.turn_recorded" in line:
                event = json.loads(line[6:])
                received.append((event["session_id"], event["data"]["turn_number"], time.time()))


async def drain(url: str, count: int) -> None:
    """`count` subscribers that read their streams and keep nothing, until killed."""
    readies = [asyncio.Event() for _ in range(count)]
    listeners = [asyncio.create_task(subscribe(url, False, [], ready)) for ready in readies]
    await asyncio.gather(*(ready.wait() for ready in readies))
    print("ready", flush=True)
    await asyncio.gather(*listeners)


async def measure(write_url: str, read_url: str, seconds: float) -> dict[str, Any]:
    baseline = await write_for(write_url, seconds, {})
    drainers = subprocess.Popen(  # noqa: ASYNC220 (started once, before the timing)
        [
            sys.executable,
            "-m",
            "bench.events",
            "drain",
            read_url,
            "--count",
            str(SUBSCRIBERS - TIMED_SUBSCRIBERS),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    received: list[tuple[str, int, float]] = []
    try:
        assert drainers.stdout is not None
        await asyncio.to_thread(drainers.stdout.readline)
        readies = [asyncio.Event() for _ in range(TIMED_SUBSCRIBERS)]
        listeners = [
            asyncio.create_task(subscribe(read_url, True, received, ready)) for ready in readies
        ]
        await asyncio.gather(*(ready.wait() for ready in readies))
        await asyncio.sleep(0.5)
        sent: dict[tuple[str, int], float] = {}
        attached = await write_for(write_url, seconds, sent)
        await asyncio.sleep(1)
        for listener in listeners:
            listener.cancel()
        await asyncio.gather(*listeners, return_exceptions=True)
    finally:
        drainers.kill()
        drainers.wait()
    latencies = sorted(
        max(0.0, at - sent[(session_id, turn)]) * 1000
        for session_id, turn, at in received
        if (session_id, turn) in sent
    )
    expected = len(sent) * TIMED_SUBSCRIBERS
    return {
        "writes_per_s_without": baseline / seconds,
        "writes_per_s_with": attached / seconds,
        "throughput_ratio": attached / baseline if baseline else 0.0,
        "delivery_p50_ms": statistics.median(latencies) if latencies else float("nan"),
        "delivery_p99_ms": latencies[int(len(latencies) * 0.99) - 1] if latencies else float("nan"),
        "delivered_share": len(latencies) / expected if expected else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.events")
    parser.add_argument("engine", choices=["sqlite", "postgres", "drain"])
    parser.add_argument("store", help="the store; for drain, the server's URL")
    parser.add_argument("--port", type=int, default=18_490)
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.engine == "drain":
        asyncio.run(drain(args.store, args.count))
        return
    seconds = 2.0 if args.quick else 10.0
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
