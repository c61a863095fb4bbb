"""Progress bars: live on a terminal, a line every few seconds in a log file or pipe.

>>> import io
>>> log = io.StringIO()
>>> with bar(1000, desc="training", unit="step", file=log) as b:
...     for _ in range(1000):
...         b.update()
>>> log.getvalue().count("training") <= 3  # the first, the last, and at most one between
True
"""

from __future__ import annotations

import sys
from typing import IO, Any

from tqdm.auto import tqdm

LOG_INTERVAL = 10.0
"""Seconds between lines when the bar is written to something that is not a terminal."""


def bar(total: int | None, *, desc: str, unit: str, enabled: bool = True, initial: int = 0,
        file: IO[str] | None = None, leave: bool = True, **options: Any) -> tqdm:
    """A tqdm bar that redraws freely on a terminal and writes sparingly anywhere else."""
    stream = sys.stderr if file is None else file
    interactive = bool(getattr(stream, "isatty", lambda: False)())
    return tqdm(
        total=total, initial=initial, desc=desc, unit=unit, disable=not enabled, file=stream,
        leave=leave, dynamic_ncols=interactive, mininterval=0.1 if interactive else LOG_INTERVAL,
        maxinterval=LOG_INTERVAL if interactive else 10 * LOG_INTERVAL, **options,
    )
