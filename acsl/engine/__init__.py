"""Training (stage 1 and the decoupled stage 2) in one loop, checkpoints, inference."""

from ..config import TrainConfig
from .checkpoint import atomic_torch_save, load_checkpoint
from .inference import predict
from .loop import CHECKPOINT_NAME, LOG_NAME, TrainLoop
from .steps import freeze_all_but_classifier, load_stage1_weights
from .trainer import resolve_device, train

__all__ = [
    "CHECKPOINT_NAME", "LOG_NAME", "TrainConfig", "TrainLoop", "atomic_torch_save", "freeze_all_but_classifier",
    "load_checkpoint", "load_stage1_weights", "predict", "resolve_device", "train",
]
