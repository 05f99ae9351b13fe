"""HTTP scenarios: the real server process on one core, wrk on the other."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

WRK_DIR = Path(__file__).parent / "wrk"
_UNITS_US = {"us": 1.0, "ms": 1000.0, "s": 1_000_000.0}


def ensure_wrk() -> str:
    """The wrk binary; installed from the system's packages when missing and possible."""
    found = shutil.which("wrk")
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False)
        found = shutil.which("wrk")
    if found is None:
        raise SystemExit("bench: wrk is needed for the HTTP scenarios: apt-get install wrk")
    return found


def _pinned(core: int, command: list[str]) -> list[str]:
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        return ["taskset", "-c", str(core), *command]
    return command


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    log_path: Path
    startup_s: float

    def peak_rss_mib(self) -> float:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        match = re.search(r"VmHWM:\s+(\d+) kB", status)
        return int(match.group(1)) / 1024 if match else float("nan")

    def server_errors(self) -> int:
        text = self.log_path.read_text(errors="replace")
        # uvicorn's access line (" 503"), or the app's request line (status=503).
        return len(re.findall(r'" 5\d\d\b|\bstatus=5\d\d\b', text)) + text.count("unhandled_error")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)


def start_server(env: dict[str, str], port: int, log_path: Path, core: int = 0) -> Server:
    """Start bench.server (the app as `serve` runs it) and time it until /health answers."""
    started = time.perf_counter()
    with log_path.open("w") as log:
        process = subprocess.Popen(
            _pinned(core, [sys.executable, "-m", "bench.server", "--port", str(port)]),
            env={**os.environ, **env},
            stderr=log,
            stdout=log,
        )
    url = f"http://127.0.0.1:{port}"
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.perf_counter() - started > 60:
            raise SystemExit(f"bench: the server did not start:\n{log_path.read_text()}")
        time.sleep(0.01)
    return Server(process, url, log_path, time.perf_counter() - started)


def _latency_us(output: str, percentile: str) -> float:
    match = re.search(rf"^\s+{percentile}%\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
    return float(match.group(1)) * _UNITS_US[match.group(2)] if match else float("nan")


def run_wrk(
    wrk: str, url: str, scenario: str, connections: int, seconds: int, ids_file: Path
) -> dict[str, float]:
    """One wrk run; requests per second, p50/p99 in microseconds, and failures."""
    command = [
        wrk,
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "-s",
        str(WRK_DIR / f"{scenario}.lua"),
        url,
    ]
    env = {**os.environ, "BENCH_IDS": str(ids_file), "BENCH_WRK_DIR": str(WRK_DIR)}
    output = subprocess.run(
        _pinned(1, command), env=env, capture_output=True, text=True, check=True
    ).stdout
    requests = re.search(r"Requests/sec:\s+([\d.]+)", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    socket = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return {
        "req_per_s": float(requests.group(1)) if requests else 0.0,
        "p50_us": _latency_us(output, "50"),
        "p99_us": _latency_us(output, "99"),
        "non_2xx": float(non_2xx.group(1)) if non_2xx else 0.0,
        "socket_errors": float(sum(int(n) for n in socket.groups())) if socket else 0.0,
    }
