"""Locks between processes that share a run store (acsl.locks): ``acsl reproduce --jobs 2`` runs two
notebooks at once, and a run both need is trained once, by whichever asks first."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from acsl.locks import QUIET_WAITS_ENV, exclusive, held

WORKERS = Path(__file__).parent / "workers"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}

HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from acsl.locks import exclusive
    with exclusive(sys.argv[1]):
        Path(sys.argv[2]).write_text("holding")
        time.sleep(float(sys.argv[3]))
""")


def _start_holder(lock: Path, marker: Path, seconds: float) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(lock), str(marker), str(seconds)], env=ENV)
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert holder.poll() is None and time.monotonic() < deadline, "the holder never took the lock"
        time.sleep(0.05)
    return holder


def test_a_second_process_waits_for_the_holder(tmp_path, capfd):
    lock = tmp_path / "locks" / "run.lock"
    holder = _start_holder(lock, tmp_path / "marker", 1.5)
    started = time.monotonic()
    with exclusive(lock, "the test run", announce_after_s=0.2):
        waited = time.monotonic() - started
        assert holder.poll() == 0  # the holder had finished before this process got the lock
    assert waited > 0.5
    assert "waiting for another process to finish the test run" in capfd.readouterr().err  # the process's stderr
    assert not lock.exists()  # removed on release


TURN = textwrap.dedent("""
    import os, sys, time
    from acsl.locks import exclusive
    with exclusive(sys.argv[1], "the shared run", announce_after_s=0.0):
        with open(sys.argv[2], "a") as log:
            log.write(f"in {os.getpid()}\\n")
        time.sleep(0.5)
        with open(sys.argv[2], "a") as log:
            log.write(f"out {os.getpid()}\\n")
""")


def test_processes_take_turns_though_each_holder_removes_the_file_and_report_kernels_wait_quietly(tmp_path):
    """Each holder removes the lock file on release; a waiter that had locked the removed file retries on the
    new one, so four processes started together still hold the lock one at a time. With ``ACSL_QUIET_WAITS=1``
    (what ``acsl reproduce`` gives its kernels) a wait prints nothing into the waiting notebook."""
    lock, log = tmp_path / "locks" / "run.lock", tmp_path / "turns.log"
    processes = [subprocess.Popen([sys.executable, "-c", TURN, str(lock), str(log)], stderr=subprocess.PIPE, text=True,
                                  env={**ENV, QUIET_WAITS_ENV: "1"}) for _ in range(4)]
    errors = [process.communicate(timeout=120)[1] for process in processes]
    assert all(process.returncode == 0 for process in processes), errors
    lines = log.read_text().split()
    turns = list(zip(lines[0::4], lines[1::4], lines[2::4], lines[3::4]))
    assert len(turns) == 4 and all(a == "in" and c == "out" and b == d for a, b, c, d in turns)  # never two at once
    assert not any("waiting" in error for error in errors)
    assert not lock.exists()


def test_a_killed_holder_leaves_no_lock_behind(tmp_path):
    lock = tmp_path / "run.lock"
    holder = _start_holder(lock, tmp_path / "marker", 600)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with exclusive(lock):
        assert held(lock)
    assert not held(lock)


def test_the_lock_is_reentrant_within_a_process(tmp_path):
    lock = tmp_path / "run.lock"
    with exclusive(lock):
        with exclusive(lock):  # the store asks for a checkpoint while holding the run's lock
            assert held(lock)
        assert held(lock)
    assert not held(lock)


def test_two_processes_train_each_shared_run_once(tmp_path):
    """Two processes ask at once for a stage-2 run: its stage-1 parent and pretrained start are shared.
    Every run is trained by exactly one of them, and both read the same metrics."""
    log = tmp_path / "trained.log"
    workers = [subprocess.Popen([sys.executable, str(WORKERS / "store_metrics.py"), str(tmp_path), str(log)],
                                env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    outputs = [worker.communicate(timeout=600) for worker in workers]
    for worker, (_, err) in zip(workers, outputs):
        assert worker.returncode == 0, err
    trained = log.read_text().splitlines()
    assert len(trained) == len(set(trained)) >= 2, trained  # the pretrained start, stage 1, stage 2: once each
    assert outputs[0][0] == outputs[1][0]
    assert not list((tmp_path / "runs").glob("*/*.partial")) and not list((tmp_path / "runs").glob("*.partial"))
