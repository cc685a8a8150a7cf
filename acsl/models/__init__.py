"""Detectors: torchvision Faster R-CNN FPN with a long-tail classification loss in the box head."""

from .backbones import BACKBONES, build_backbone
from .detector import DetectorConfig, LongTailFasterRCNN, build_detector
from .roi_heads import LongTailRoIHeads

__all__ = ["BACKBONES", "DetectorConfig", "LongTailFasterRCNN", "LongTailRoIHeads", "build_backbone", "build_detector"]
