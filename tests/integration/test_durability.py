"""What a crash or an abrupt exit does to acknowledged writes."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.backends import stored_ids

pytestmark = pytest.mark.sqlite

ROOT = Path(__file__).resolve().parents[2]

# Writers print each id only once create() has returned; with several at
# once, their writes share group commits.
CREATE_FOREVER = textwrap.dedent(
    """
    import asyncio, sys
    from src.persistence.repositories.session_repo import SessionRepository
    from tests.builders import new_session

    async def writer(repository: SessionRepository) -> None:
        while True:
            created = await repository.create(new_session())
            print(created.id, flush=True)

    async def main() -> None:
        repository = SessionRepository(sys.argv[1])
        await asyncio.gather(*(writer(repository) for _ in range(int(sys.argv[2]))))

    asyncio.run(main())
    """
)

# The repository stays referenced from a global, as an application's would,
# so only the worker thread's daemon flag lets the interpreter exit.
EXIT_WITHOUT_CLOSE = textwrap.dedent(
    """
    import asyncio, sys
    from src.persistence.repositories.session_repo import SessionRepository
    from tests.builders import new_session

    REPOSITORY = SessionRepository(sys.argv[1])

    async def main() -> None:
        created = await REPOSITORY.create(new_session())
        print(created.id, flush=True)

    asyncio.run(main())
    """
)


def python(script: str, *args: str) -> list[str]:
    return [sys.executable, "-c", script, *args]


@pytest.mark.parametrize("writers", [1, 32])
def test_every_acknowledged_create_survives_sigkill(tmp_path: Path, writers: int) -> None:
    db_path = tmp_path / "crash.db"
    with subprocess.Popen(
        python(CREATE_FOREVER, str(db_path), str(writers)),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        assert child.stdout is not None
        acknowledged = [child.stdout.readline().strip() for _ in range(200)]
        child.send_signal(signal.SIGKILL)
        # Ids printed before the kill landed are acknowledged too.
        acknowledged += [line.strip() for line in child.stdout if line.strip()]

    assert child.returncode == -signal.SIGKILL
    assert len(acknowledged) >= 200
    assert set(acknowledged) <= stored_ids(db_path)


def test_an_unclosed_repository_does_not_keep_the_interpreter_alive(tmp_path: Path) -> None:
    db_path = tmp_path / "unclosed.db"

    result = subprocess.run(
        python(EXIT_WITHOUT_CLOSE, str(db_path)),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert stored_ids(db_path) == {result.stdout.strip()}
