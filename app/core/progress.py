"""Progress of long command-line work: a bar with position and ETA on a terminal, and a line
every tenth of the way (with the rate and the time left) in a log (systemd, cron, CI), where a
bar would print nothing until the end."""
from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from typing import Callable, Iterator

import click


@contextmanager
def progress(total: int, label: str, unit: str = "") -> Iterator[Callable[[int], None]]:
    """Yields `advance(n=1)`. On a terminal: click's bar; elsewhere: periodic lines on stderr."""
    stream = sys.stderr
    if stream.isatty():
        with click.progressbar(length=total, label=label, show_pos=True, show_eta=True, file=stream) as bar:
            yield bar.update
        return
    started, done, next_report = time.monotonic(), 0, max(1, total // 10)

    def advance(n: int = 1) -> None:
        nonlocal done, next_report
        done += n
        if done >= next_report or done == total:
            elapsed = time.monotonic() - started
            left = elapsed / done * (total - done) if done else 0
            click.echo(f"{label}：{done}/{total}{unit}（{done * 100 // max(total, 1)}%），"
                       f"已用 {elapsed:.1f} 秒，预计还需 {left:.0f} 秒", err=True)
            next_report = done + max(1, total // 10)

    yield advance
