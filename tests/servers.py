"""Real servers on free ports: `interview-system serve` processes, or the app under uvicorn
in the test's own process."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn

from src.api.http_protocol import GuardedHttpToolsProtocol
from src.core.config import Settings
from src.main import create_app

SERVER = Path(sys.executable).with_name("interview-system")


def run_command(
    *args: str, env: dict[str, str], cwd: Path, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run `interview-system ARGS` to its end with only `env` (and a PATH) set."""
    return subprocess.run(
        [str(SERVER), *args],
        env={"PATH": "/usr/bin:/bin", **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@dataclass
class LaunchedServer:
    """A started `interview-system serve` process and where it listens and logs."""

    process: subprocess.Popen[bytes]
    url: str
    log_path: Path

    def wait_until_healthy(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self.process.poll() is None, self.log_path.read_text()
            try:
                if httpx.get(f"{self.url}/health", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"server did not start within {timeout} s"
            time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM, then check that uvicorn shut down gracefully."""
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)
        # uvicorn shuts down gracefully, then re-raises SIGTERM to exit with it.
        assert self.process.returncode in (0, -signal.SIGTERM)
        assert "Application shutdown complete" in self.log_path.read_text()

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)


def launch_server(cwd: Path, env: dict[str, str]) -> LaunchedServer:
    """Start a server on a free port; the caller stops or kills it."""
    port = free_port()
    log_path = cwd / f"server-{port}.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [str(SERVER), "serve", "--port", str(port)],
            cwd=cwd,
            env={**os.environ, **env},
            stderr=log,
        )
    return LaunchedServer(process, f"http://127.0.0.1:{port}", log_path)


@contextmanager
def running_server(cwd: Path, env: dict[str, str]) -> Iterator[str]:
    """Start a server, wait until /health answers, yield its URL, stop it with SIGTERM."""
    server = launch_server(cwd, env)
    try:
        server.wait_until_healthy()
        yield server.url
    except BaseException:
        server.kill()
        raise
    server.stop()


@asynccontextmanager
async def serving_in_process(settings: Settings, **app_options: float) -> AsyncIterator[str]:
    """The app under uvicorn in this process, with the server's own HTTP protocol, so that
    `create_app`'s options for tests (a shorter heartbeat, a shorter stall) can be set;
    its URL."""
    port = free_port()
    app = create_app(settings, **app_options)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="on",
            http=GuardedHttpToolsProtocol,
        )
    )
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(20):
            while not server.started:  # noqa: ASYNC110 (uvicorn offers no event to wait for)
                await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 20)
