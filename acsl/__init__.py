"""acsl: the reproducible companion of "Adaptive Class Suppression Loss for Long-Tail Object Detection"
(Wang et al., CVPR 2021), and a small toolkit of long-tail detection losses."""

__version__ = "0.1.0"
