"""Training (stage 1 and the decoupled stage 2), checkpoints, inference."""

from .checkpoint import atomic_torch_save, load_checkpoint
from .inference import predict
from .trainer import TrainConfig, freeze_all_but_classifier, load_stage1_weights, resolve_device, train

__all__ = [
    "TrainConfig", "atomic_torch_save", "freeze_all_but_classifier", "load_checkpoint",
    "load_stage1_weights", "predict", "resolve_device", "train",
]
