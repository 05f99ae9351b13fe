"""The bulk export's progress bar: live on a terminal, one last line elsewhere."""

from __future__ import annotations

import io

from src.exporting import ProgressBar


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_bar_redraws_one_line() -> None:
    stream = Terminal()
    bar = ProgressBar(4, stream, width=8)

    for _ in range(4):
        bar.advance()

    frames = stream.getvalue().split("\r")[1:]
    assert frames == [
        "exported 1/4 [##......]",
        "exported 2/4 [####....]",
        "exported 3/4 [######..]",
        "exported 4/4 [########]\n",
    ]


def test_elsewhere_only_the_last_line_is_written() -> None:
    stream = io.StringIO()
    bar = ProgressBar(3, stream, width=6)

    for _ in range(3):
        bar.advance()

    assert stream.getvalue() == "exported 3/3 [######]\n"
