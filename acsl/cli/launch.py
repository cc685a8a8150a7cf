"""Training a spec with K processes: ``torchrun --nproc_per_node K -m acsl train <the spec's arguments>``
(docs/ARCHITECTURE.md, "Data parallel training"). A run store given this launcher hands every training
to torchrun; each process then trains its share and rank 0 writes the checkpoint into the same store.
torchrun and its ranks start with the CPU kernels pinned (``acsl.cpu_kernels.process_environment``;
docs/ARCHITECTURE.md, "The same numbers on any machine"), as the kernels of ``acsl reproduce`` are."""

from __future__ import annotations

import subprocess
import sys

from ..cpu_kernels import process_environment
from ..runs import ExperimentSpec, RunStore
from ..runs.store import Launcher
from .arguments import spec_arguments


def torchrun_command(spec: ExperimentSpec, store: RunStore, processes: int) -> list[str]:
    """The command line that trains ``spec`` into ``store`` with ``processes`` processes."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
               "-m", "acsl", "train", *spec_arguments(spec), "--run-store", str(store.root),
               "--data-root", str(store.data_root), "--device", store.device.type]  # each rank: cuda:LOCAL_RANK
    if not store.progress:
        command.append("--no-progress")
    if not store.amp:
        command.append("--no-amp")
    if store.channels_last:
        command.append("--channels-last")
    if store.workers is not None:
        command += ["--workers", str(store.workers)]
    return command


def torchrun_launcher(processes: int) -> Launcher | None:
    """A run-store launcher that trains with ``processes`` processes under torchrun; None for one process."""
    if processes < 1:
        raise ValueError(f"processes must be >= 1, got {processes}")
    if processes == 1:
        return None

    def launch(spec: ExperimentSpec, store: RunStore) -> None:
        command = torchrun_command(spec, store, processes)
        finished = subprocess.run(command, capture_output=not store.progress, text=True, env=process_environment())
        if finished.returncode != 0:
            output = (finished.stderr or "")[-3000:] if not store.progress else ""
            raise RuntimeError(f"distributed training of {spec.name} with {processes} processes failed "
                               f"(exit {finished.returncode}): {' '.join(command)}\n{output}")

    return launch
