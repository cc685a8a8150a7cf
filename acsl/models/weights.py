"""Loading trained weights with errors that say what to do (docs/ARCHITECTURE.md, "Training recipe").

Two sources: torchvision's published weights (the COCO-trained Faster R-CNN the paper-scale profiles
start from, the ImageNet backbones of Table 3), fetched once into torch's hub cache
(``torch.hub.get_dir()``/checkpoints), and a local file given as ``--detector init=PATH``. A missing
file (no internet) names the real cache folder and the ``init=PATH`` form; a corrupt or truncated file
(a download cut short, a disk error) names the file and says to delete or replace it, instead of a bare
``UnpicklingError: invalid load key``.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import torch

#: What a corrupt or truncated weights file raises from ``torch.load`` (garbage: UnpicklingError; a cut zip:
#: RuntimeError "failed reading zip archive"; a cut legacy pickle: EOFError).
CORRUPT_ERRORS = (pickle.UnpicklingError, EOFError, RuntimeError, ValueError)


class WeightsFileError(RuntimeError):
    """A weights file is missing, corrupt or truncated; the message names it and what to do."""


def hub_checkpoint_dir() -> Path:
    """The folder torchvision downloads weights into: ``torch.hub.get_dir()``/checkpoints."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def cached_weights_path(url: str) -> Path:
    """Where the hub cache keeps the file of ``url``."""
    return hub_checkpoint_dir() / Path(urlparse(url).path).name


def _reason(error: BaseException) -> str:
    """The cause, whole: its type and message, lines joined (torch's explanations run over several sentences)."""
    message = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


@contextmanager
def torchvision_weights(url: str, what: str) -> Iterator[None]:
    """Within the block torchvision fetches or loads the weights of ``url`` (``what`` names them); its
    errors become a ``WeightsFileError`` with the cache path and the remedies."""
    path = cached_weights_path(url)
    try:
        yield
    except OSError as error:  # no internet, a refused connection, an unwritable cache
        raise WeightsFileError(
            f"cannot fetch {what} from {url} ({_reason(error)}); without internet, copy {path.name} into "
            f"{path.parent} (torch.hub.get_dir()/checkpoints; set $TORCH_HOME to move it), or start from a local "
            "copy with --detector init=PATH") from error
    except CORRUPT_ERRORS as error:
        raise WeightsFileError(
            f"the weights file {path} ({what}) is corrupt or truncated ({_reason(error)}); delete it so that it is "
            f"downloaded again, replace it with a good copy of {url}, or start from a local copy with "
            "--detector init=PATH") from error


def load_weights_file(path: str | Path) -> dict:
    """The state dict saved in ``path`` (an acsl checkpoint's ``"model"`` entry, or the file itself),
    with a clear error for a missing, corrupt or truncated file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"detector init weights not found: {path} (expected 'torchvision-coco' or a file; "
                                "--detector init=PATH)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except CORRUPT_ERRORS as error:
        raise WeightsFileError(f"the detector init weights {path} are corrupt or truncated ({_reason(error)}); "
                               "replace the file with a good copy, or choose another with --detector init=PATH "
                               "(a torchvision Faster R-CNN state dict or an acsl checkpoint)") from error
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    return state
