"""Exclusive locks between processes that share a run store or a data folder.

``acsl reproduce --jobs 2`` executes two notebooks at once, and two notebooks often need the same run
(the pretrained start, the 1x baseline) or the same cache. Each such piece of work is done under an
advisory lock on a file beside it (POSIX ``flock``): the first process does the work, the second waits,
then finds it finished and reads it. The lock is released when the holder exits, however it exits, so a
killed process never leaves a lock behind (docs/ARCHITECTURE.md, "Running notebooks in parallel"); the holder
removes the file when it releases it (a killed holder's file is removed by the next holder), and a waiter that
locked a removed file retries on the path's new one.

Locks are re-entrant within a process (the run store asks for a run's checkpoint while already holding
that run's lock); they exclude other processes, not other threads of the same process. The processes of
one ``torchrun`` launch take none: their parent holds the run's lock for the launch and makes what they
share with other runs (the parent run, the benchmark) before it starts them.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: Set to 1 (``acsl reproduce`` does, for its kernels): waits are not announced. A kernel's own stderr is captured
#: into the notebook, and a lock wait between parallel notebooks is machinery, no part of a published page.
QUIET_WAITS_ENV = "ACSL_QUIET_WAITS"

#: path → (file descriptor, depth) of the locks this process holds.
_HELD: dict[str, list[int]] = {}


@contextmanager
def exclusive(path: str | Path, what: str = "", announce_after_s: float = 5.0) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing) for the ``with`` block.

    Waits for another process holding it; after ``announce_after_s`` seconds of waiting, says on stderr
    once what it waits for (``what``, e.g. "run quick_stage1_softmax_ce_1x_seed0"), so a process that seems
    idle explains itself (unless ``ACSL_QUIET_WAITS=1``: a report's kernels, whose stderr is their page's)."""
    key = os.path.abspath(path)
    if key in _HELD:
        _HELD[key][1] += 1
        try:
            yield
        finally:
            _HELD[key][1] -= 1
        return
    fd = _locked_file(key, what or key, announce_after_s)
    try:
        _HELD[key] = [fd, 1]
        try:
            yield
        finally:
            del _HELD[key]
            with contextlib.suppress(FileNotFoundError):
                os.unlink(key)  # removed while still held: a waiter that locked it sees that and opens the new one
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _locked_file(key: str, what: str, announce_after_s: float) -> int:
    """A descriptor of the lock file ``key``, locked. The holder removes the file when it releases it, so a
    process that was waiting on the removed file retries on the path's current file."""
    Path(key).parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(key, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            _acquire(fd, what, announce_after_s)
            if os.path.exists(key) and os.stat(key).st_ino == os.fstat(fd).st_ino:
                return fd
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)


def _acquire(fd: int, what: str, announce_after_s: float) -> None:
    started, announced = time.monotonic(), False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if not announced and time.monotonic() - started >= announce_after_s and os.environ.get(QUIET_WAITS_ENV) != "1":
                # the process's own stderr, not a notebook cell's: the wait is no part of a published page
                print(f"[acsl] waiting for another process to finish {what}", file=sys.__stderr__ or sys.stderr,
                      flush=True)
                announced = True
            time.sleep(0.2)


def held(path: str | Path) -> bool:
    """Whether this process holds the lock on ``path``."""
    return os.path.abspath(path) in _HELD
