"""Classification losses for the RoI box head (one module per method) and their name registry."""

from .acsl import ACSL
from .bags import BalancedGroupSoftmax
from .base import ClassificationLoss
from .class_balanced import ClassBalancedCE
from .eql import EQL
from .eqlv2 import EQLv2
from .federated import FederatedLoss
from .focal import FocalLoss
from .ldam import LDAM
from .registry import DENSE_LOSSES, LOSSES, build_dense_loss, build_loss, loss_class
from .seesaw import SeesawLoss
from .sigmoid_bce import SigmoidBCE
from .softmax_ce import SoftmaxCE

__all__ = ["ACSL", "BalancedGroupSoftmax", "ClassBalancedCE", "ClassificationLoss", "DENSE_LOSSES", "EQL", "EQLv2", "FederatedLoss", "FocalLoss", "LDAM", "LOSSES",
           "SeesawLoss", "SigmoidBCE", "SoftmaxCE", "build_dense_loss", "build_loss", "loss_class"]
