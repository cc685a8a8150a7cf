"""Seesaw Loss (Wang et al., "Seesaw Loss for Long-Tailed Instance Segmentation", CVPR 2021, §3, Eq. 2–5)
with its objectness branch and cosine classifier (§3.3), on the RoI head.

For a RoI of class i and logits z over the classes, the softmax's negative terms are re-weighted:

    σ̂_i = e^{z_i} / (Σ_{j≠i} S_ij e^{z_j} + e^{z_i}),    L = −log σ̂_i,    S_ij = M_ij · C_ij
    M_ij = (N_j / N_i)^p  if N_i > N_j, else 1     (mitigation: N = cumulative training instances per class)
    C_ij = (σ_j / σ_i)^q  if σ_j > σ_i, else 1     (compensation: σ the plain softmax, detached; σ_i ≥ eps)

i.e. the cross entropy of the logits z_j + log S_ij (S_ii = 1). Defaults p = 0.8, q = 2.0, eps = 1e-2.
N is counted online, batch by batch before the batch's loss, over all processes (all-reduced under
torch.distributed) and kept as a buffer (it travels with checkpoints).

Objectness (default on): the head predicts C class logits plus 2 objectness logits. Layout here:
column 0 = "background" objectness, columns 1..C = classes, column C + 1 = "object" objectness. The
class term is computed on foreground RoIs only, the objectness term (2-way softmax CE) on all RoIs;
both are summed and divided by N RoIs. Test score of class j: softmax(classes)_j · P(object); column 0
holds P(background). Without objectness the seesaw softmax runs over the C + 1 columns (background as
a class; it is left out of the mitigation, whose ratio N_j / N_bg would otherwise cancel every class's
negative gradient on background RoIs), and p = q = 0 is exactly softmax cross entropy.

The classifier is cosine (``acsl.layers.CosineClassifier``, τ = 20, §3.3) unless ``cosine=False``; the loss
declares it (``classifier_spec``) and the detector builds it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..layers.classifiers import ClassifierSpec
from .base import ClassificationLoss, summed_over_processes


class SeesawLoss(ClassificationLoss):
    use_sigmoid = False

    def __init__(self, num_classes: int, class_frequencies: Sequence[str] | None = None, p: float = 0.8,
                 q: float = 2.0, eps: float = 1e-2, objectness: bool = True, cosine: bool = True,
                 temperature: float = 20.0) -> None:
        super().__init__(num_classes, class_frequencies)
        if p < 0 or q < 0 or eps <= 0:
            raise ValueError(f"Seesaw: p and q must be >= 0 and eps > 0, got p={p!r}, q={q!r}, eps={eps!r}")
        if not temperature > 0:
            raise ValueError(f"Seesaw: temperature must be > 0, got {temperature!r}")
        self.p, self.q, self.eps = float(p), float(q), float(eps)
        self.objectness, self.cosine, self.temperature = bool(objectness), bool(cosine), float(temperature)
        # Cumulative instances per column of the seesaw softmax (C classes, or C + 1 with background).
        columns = num_classes if self.objectness else num_classes + 1
        self.register_buffer("counts", torch.zeros(columns, dtype=torch.float64))

    def extra_repr(self) -> str:
        return (f"num_classes={self.num_classes}, p={self.p}, q={self.q}, objectness={self.objectness}, "
                f"cosine={self.cosine}")

    @property
    def num_logits(self) -> int:
        return self.num_classes + 2 if self.objectness else self.num_classes + 1

    @property
    def classifier_spec(self) -> ClassifierSpec:
        """The cosine classifier of §3.3 (τ = ``temperature``), or the plain linear one with ``cosine=False``."""
        if self.cosine:
            return ClassifierSpec("cosine", self.num_logits, self.temperature)
        return ClassifierSpec("linear", self.num_logits)

    def scores(self, logits: torch.Tensor) -> torch.Tensor:
        if not self.objectness:
            return torch.softmax(logits, dim=-1)
        objectness = torch.softmax(logits[:, [0, self.num_classes + 1]], dim=-1)
        classes = torch.softmax(logits[:, 1:self.num_classes + 1], dim=-1)
        return torch.cat([objectness[:, :1], classes * objectness[:, 1:]], dim=1)

    def seesaw_factors(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """S[n, j] = M_{label_n, j} · C_{label_n, j} (1 on the label's own column), shape [N, K]."""
        factors = torch.ones_like(z)
        if self.p > 0:
            counts = self.counts.to(z.dtype).clamp_min(1)
            ratio = counts.unsqueeze(0) / counts[labels].unsqueeze(1)  # N_j / N_i
            if not self.objectness:  # background neither mitigates nor is mitigated: N_bg dwarfs every class
                ratio[:, 0] = 1
                ratio = torch.where((labels == 0).unsqueeze(1), 1.0, ratio)
            factors = factors * torch.where(ratio < 1, ratio.pow(self.p), torch.ones_like(ratio))
        if self.q > 0:
            sigma = torch.softmax(z.detach(), dim=1)
            own = sigma.gather(1, labels.unsqueeze(1)).clamp_min(self.eps)
            ratio = sigma / own
            factors = factors * torch.where(ratio > 1, ratio.pow(self.q), torch.ones_like(ratio))
        return factors.scatter(1, labels.unsqueeze(1), 1.0)

    def seesaw_ce(self, z: torch.Tensor, labels: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        """Σ_n −log σ̂_{n, label_n} over the rows of ``z`` (Eq. 2–3); ``rows`` (a boolean mask): over those rows
        alone, the others computed and weighted 0 (the device path: no rows selected by a mask)."""
        if self.training:  # before the empty check: under torch.distributed every rank joins the all-reduce
            self._count(labels, z.shape[1], rows)
        if z.shape[0] == 0:
            return z.sum() * 0.0
        adjusted = z + self.seesaw_factors(z, labels).log()
        if rows is None:
            return F.cross_entropy(adjusted, labels, reduction="sum")
        return (F.cross_entropy(adjusted, labels, reduction="none") * rows).sum()

    def loss(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if not self.objectness:
            return self.seesaw_ce(z, labels) / z.shape[0]
        foreground = labels > 0
        if self.on_host(z):
            class_term = self.seesaw_ce(z[foreground, 1:self.num_classes + 1], labels[foreground] - 1)
        else:  # every row, the background ones weighted 0: nothing read back to the host
            class_term = self.seesaw_ce(z[:, 1:self.num_classes + 1], (labels - 1).clamp(min=0), foreground)
        objectness_term = F.cross_entropy(z[:, [0, self.num_classes + 1]], foreground.long(), reduction="sum")
        return (class_term + objectness_term) / z.shape[0]

    def on_empty_batch(self, device: torch.device) -> None:
        if self.training:  # count nothing, but join the other processes' all-reduce
            self._count(torch.zeros(0, dtype=torch.long, device=device), len(self.counts))

    @torch.no_grad()
    def _count(self, labels: torch.Tensor, columns: int, rows: torch.Tensor | None = None) -> None:
        """Add this batch's instances per column (of the ``rows`` only, when given) to ``counts``, all ranks'."""
        weights = torch.ones(labels.shape, dtype=torch.float64, device=labels.device) if rows is None else rows.double()
        batch = torch.zeros(columns, dtype=torch.float64, device=labels.device).index_add_(0, labels, weights)
        batch = summed_over_processes(batch, self.sync_across_processes)
        self.counts += batch.to(self.counts.device)
