"""NorCal (Pan, Zhang, Li, Hu, Xuan, Changpinyo, Gong and Chao, "On Model Calibration for Long-Tailed Object Detection and Instance
Segmentation", NeurIPS 2021): a post-hoc calibration of a trained detector's class scores by class frequency;
training is the base loss's, unchanged (docs/ARCHITECTURE.md, "Peer losses and samplers"). The run store
therefore never trains a NorCal run: it evaluates the base loss's trained detector of the same spec with these
scores (``trained_as``).

With N_c the training images of class c and γ ≥ 0, a softmax detector's test-time scores become

    s_c = (e^(z_c) / N_c^γ) / (Σ_k e^(z_k) / N_k^γ + e^(z_0)),    i.e. softmax over [z_0, z_c − γ · log N_c]

so the background keeps its unscaled logit in the normalisation and is then dropped. γ = 0 gives the plain
softmax back (the authors' default: their repository ships no tuned γ, so a γ must be chosen on held-out data:
on the synthetic profiles, on the tuning draw).

``NorCal`` wraps any registered loss with the plain C + 1 layout (``base``, softmax CE by default): it trains
exactly as the base loss does (value, gradients, classifier, initial bias, random draws), and only its
``scores`` differ, the base loss's scores of the adjusted logits z_c − γ · log N_c. For a softmax base that is the
formula above. For a sigmoid base (our extension: the authors' code calibrates softmax scores only) it gives
σ(z_c − γ · log N_c), the same division of the odds e^(z_c) by N_c^γ, without a renormalisation over classes that
independent sigmoids do not share.

Follows the authors' code, github.com/tydpan/NorCal (HEAD 23e5ab6): ``projects/NorCal/norcal/roi_heads.py``
(``METHOD="gamma"``, ``WITH="exps"``, ``RENORM=True``, the defaults; the counts are LVIS image counts,
``by="image"``) and ``norcal/config.py`` (γ = 0). Deliberate differences: the softmax of the adjusted logits
is computed stably, where the authors' e^z can overflow (detectron2 then drops the proposal); a class without
training images counts as one image (log 0 is undefined); their ``"probs"``/``"logits"``/``"cb"`` variants are
not offered.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import torch

from ..layers.classifiers import ClassifierSpec
from .base import ClassificationLoss


class NorCal(ClassificationLoss):
    requires_counts = True

    def __init__(self, num_classes: int, class_frequencies: Sequence[str] | None = None,
                 class_image_counts: Sequence[int] | None = None, class_instance_counts: Sequence[int] | None = None,
                 num_images: int | None = None, base: str = "softmax_ce", gamma: float = 0.0, seed: int = 0) -> None:
        super().__init__(num_classes, class_frequencies)
        from .registry import LOSSES, build_loss  # the registry imports this module

        if base == "norcal" or base not in LOSSES:
            known = ", ".join(sorted(name for name in LOSSES if name != "norcal"))
            raise ValueError(f"NorCal: base must name another registered loss ({known}), got {base!r}")
        if gamma < 0:
            raise ValueError(f"NorCal: gamma must be >= 0, got {gamma!r}")
        counts = self._check_counts("class_image_counts", class_image_counts).clamp(min=1)
        options = {"seed": seed} if "seed" in inspect.signature(LOSSES[base]).parameters else {}
        self.base = build_loss(base, num_classes, class_frequencies, class_image_counts, class_instance_counts,
                               num_images, **options)
        if self.base.num_logits != num_classes + 1:
            raise ValueError(f"NorCal: base loss {base!r} has {self.base.num_logits} logits; NorCal calibrates the "
                             f"plain layout of C + 1 = {num_classes + 1} (background and one per class)")
        self.base_name, self.gamma = base, float(gamma)
        self.use_sigmoid = self.base.use_sigmoid
        self.supports_multi_label = self.base.supports_multi_label
        # γ · log N_c per column; column 0 (background) unscaled
        shift = torch.cat([torch.zeros(1, dtype=torch.float64), self.gamma * counts.log()])
        self.register_buffer("log_count_shift", shift, persistent=False)  # float64: cast to the logits
        self.register_load_state_dict_pre_hook(_accept_base_state)


    @staticmethod
    def trained_as(options: dict) -> tuple[str, dict]:
        """NorCal trains exactly as its base loss (``forward``): its detector is the base loss's, evaluated
        with the calibrated ``scores`` (no retraining, the paper's post-hoc use). The base loss is built with
        its own defaults, as NorCal builds it: a base whose options a profile sets (DropLoss's λ) names that
        loss at its defaults, not the profile's row of it."""
        return str(options.get("base", "softmax_ce")), {}

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, base={self.base_name!r}, gamma={self.gamma}"

    @property
    def classifier_spec(self) -> ClassifierSpec:
        return self.base.classifier_spec

    def initial_bias(self) -> torch.Tensor | None:
        return self.base.initial_bias()

    def initial_weight(self) -> float | None:
        return self.base.initial_weight()

    def set_label_hierarchy(self, ancestors: Sequence[Sequence[int]] | None) -> None:
        self.base.set_label_hierarchy(ancestors)

    def __setattr__(self, name: str, value) -> None:
        super().__setattr__(name, value)
        if name == "sync_across_processes" and "base" in self._modules:  # a one-process path turns the base's off
            self.base.sync_across_processes = value

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The base loss, unchanged: NorCal changes nothing in training."""
        return self.base(logits, labels)

    def scores(self, logits: torch.Tensor) -> torch.Tensor:
        """The base loss's scores of z − γ · log N (column 0 unscaled)."""
        return self.base.scores(logits - self.log_count_shift.to(logits))


def _accept_base_state(module: NorCal, state_dict: dict, prefix: str, *args) -> None:
    """Load a detector trained with the base loss itself (the run store evaluates that one, ``trained_as``):
    the base loss's state (Seesaw's counts, EQLv2's gradient statistics) sits under ``prefix`` there and under
    ``prefix + "base."`` here; NorCal keeps no state of its own."""
    own = prefix + "base."
    for key in [k for k in state_dict if k.startswith(prefix) and not k.startswith(own)]:
        state_dict[own + key[len(prefix):]] = state_dict.pop(key)

