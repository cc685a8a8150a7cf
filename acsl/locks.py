"""Exclusive locks between processes that share a run store or a data folder.

``acsl reproduce --jobs 2`` executes two notebooks at once, and two notebooks often need the same run
(the pretrained start, the 1x baseline) or the same cache. Each such piece of work is done under an
advisory lock on a file beside it (POSIX ``flock``): the first process does the work, the second waits,
then finds it finished and reads it. The lock is released when the holder exits, however it exits, so a
killed process never leaves a lock behind (docs/ARCHITECTURE.md, "Running notebooks in parallel").

Locks are re-entrant within a process (the run store asks for a run's checkpoint while already holding
that run's lock); they exclude other processes, not other threads of the same process. The processes of
one ``torchrun`` launch take none: their parent holds the run's lock for the launch and makes what they
share with other runs (the parent run, the benchmark) before it starts them.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: path → (file descriptor, depth) of the locks this process holds.
_HELD: dict[str, list[int]] = {}


@contextmanager
def exclusive(path: str | Path, what: str = "", announce_after_s: float = 5.0) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing) for the ``with`` block.

    Waits for another process holding it; after ``announce_after_s`` seconds of waiting, says on stderr
    once what it waits for (``what``, e.g. "run quick_stage1_softmax_ce_1x_seed0"), so a parallel report
    that seems idle explains itself."""
    key = os.path.abspath(path)
    if key in _HELD:
        _HELD[key][1] += 1
        try:
            yield
        finally:
            _HELD[key][1] -= 1
        return
    Path(key).parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(key, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        _acquire(fd, what or key, announce_after_s)
        _HELD[key] = [fd, 1]
        try:
            yield
        finally:
            del _HELD[key]
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _acquire(fd: int, what: str, announce_after_s: float) -> None:
    started, announced = time.monotonic(), False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if not announced and time.monotonic() - started >= announce_after_s:
                # the process's own stderr, not a notebook cell's: the wait is no part of a published page
                print(f"[acsl] waiting for another process to finish {what}", file=sys.__stderr__ or sys.stderr,
                      flush=True)
                announced = True
            time.sleep(0.2)


def held(path: str | Path) -> bool:
    """Whether this process holds the lock on ``path``."""
    return os.path.abspath(path) in _HELD
