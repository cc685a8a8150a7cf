"""acsl's losses, its LVIS metric and a stage-2 freezing hook for mmdetection 3.x (docs/ARCHITECTURE.md,
"mmdet integration").

Import it from an mmdet config; nothing else in ``acsl`` imports it::

    custom_imports = dict(imports=["acsl.integrations.mmdet"], allow_failed_imports=False)
    model = dict(roi_head=dict(bbox_head=dict(num_classes=1230, loss_cls=dict(
        type="acsl.ACSL", ann_file="data/lvis_v0.5/annotations/lvis_v0.5_train.json", xi=0.7))))
    val_evaluator = dict(type="acsl.LVISMetric", ann_file="data/lvis_v0.5/annotations/lvis_v0.5_val.json")

It registers, in a registry of scope ``acsl`` under each of mmdet's (so a type reads ``acsl.<name>``):
- ``MODELS``: every acsl loss with the plain C + 1 columns (``LOSS_TYPES``; ECM's cosine classifier is mmdet's
  ``NormedLinear``, which the bbox head's ``cls_predictor_cfg`` names), as an
  adapter that follows mmdet's custom classifier protocol (``custom_cls_channels``, ``custom_activation``,
  ``custom_accuracy``), so the bbox head's width, its test-time scores and its logged accuracy follow the
  loss (a sigmoid loss is scored with sigmoids, EQLv2 with p · (1 − p_bg), as acsl's own detector does);
- ``MODELS`` too: the one-stage losses ``acsl.EFL`` and ``acsl.DenseFocalLoss`` for mmdet's anchor heads
  (``acsl.integrations.mmdet_dense``);
- ``METRICS``: ``acsl.LVISMetric``, LVIS box AP by ``acsl.evaluation.evaluate_lvis`` (the federated rules,
  faster-coco-eval, numpy 2), with the keys of mmdet's own ``LVISMetric`` (``bbox_AP`` ... ``bbox_APf``);
- ``HOOKS``: ``acsl.TrainOnlyHook``, which trains only the named parameters (the paper's stage 2, §4.2:
  the classifier's final layer, ``roi_head.bbox_head.fc_cls``).

Layouts. mmdet's bbox head keeps the background in the last column and labels it C (foreground 0..C-1);
acsl's losses keep it in column 0 and label it 0 (foreground 1..C). The adapter moves the last column to
the front and maps labels k → k + 1, C → 0 before calling the acsl loss, and moves the scores back: the loss
logic is acsl's own, and gradients flow back through the permutation. Class k of mmdet is the k-th entry
of the annotation file's ``categories`` list (mmdet's LVIS datasets: ``cat_ids = lvis.get_cat_ids()``), so
the class statistics the loss needs are read from that file, in that order (``class_statistics``).
"""

from __future__ import annotations

import functools
import inspect
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch
from mmdet.registry import HOOKS as MMDET_HOOKS
from mmdet.registry import METRICS as MMDET_METRICS
from mmdet.registry import MODELS as MMDET_MODELS
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from torch import nn

from ..losses.registry import LOSSES, build_loss
from .mmdet_dense import register_dense_losses
from .mmdet_metric import LVISMetric, lvis_detections  # noqa: F401 (registered there; re-exported)
from .mmdet_scope import SCOPE, head_being_built, scoped


#: mmdet type (without the scope) → acsl loss name: every loss of ``acsl.losses.LOSSES`` with the plain C + 1
#: columns (Seesaw's objectness branch and BAGS's group "others" columns need their own bbox head).
LOSS_TYPES: dict[str, str] = {
    "ACSL": "acsl", "SigmoidBCE": "bce", "EQL": "eql", "EQLv2": "eqlv2", "FederatedLoss": "federated",
    "FocalLoss": "focal", "ClassBalancedCE": "class_balanced", "LDAM": "ldam", "SoftmaxCE": "softmax_ce",
    "DropLoss": "droploss", "GOL": "gol", "ECM": "ecm", "NorCal": "norcal",
}

#: Seeds of different processes' random streams lie this far apart, as in acsl's own runs
#: (``acsl.runs.store.build_model``).
_RANK_SEED_STRIDE = 1_000_003

#: Options of mmdet's ``CrossEntropyLoss`` that a config inheriting mmdet's bbox head merges into ours.
_CROSS_ENTROPY_OPTIONS = frozenset({"use_sigmoid", "use_mask", "class_weight", "reduction", "avg_non_ignore",
                                    "ignore_index"})


MODELS, METRICS, HOOKS = scoped(MMDET_MODELS), scoped(MMDET_METRICS), scoped(MMDET_HOOKS)


class ClassStatistics(NamedTuple):
    """A training set's per-class statistics in mmdet's label order (the file's ``categories`` order)."""

    category_ids: tuple[int, ...]
    frequencies: tuple[str, ...] | None  # LVIS 'r'/'c'/'f'; None when the file has no frequency field
    image_counts: tuple[int, ...]
    instance_counts: tuple[int, ...]
    num_images: int


def class_statistics(ann_file: str | os.PathLike) -> ClassStatistics:
    """The statistics of the LVIS-format annotation file ``ann_file``: each category's ``frequency``, the
    number of its images and boxes (counted from the annotations, as ``acsl.data.LVISDetection`` does) and
    the number of images; read once per file version (a bbox head of each cascade stage reuses them)."""
    path = Path(ann_file).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"annotation file not found: {ann_file}")
    stat = path.stat()
    return _read_statistics(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=4)
def _read_statistics(path: str, _mtime_ns: int, _size: int) -> ClassStatistics:
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    categories = data.get("categories") if isinstance(data, dict) else None
    if not categories:
        raise ValueError(f"{path}: no 'categories' list; expected an LVIS-format annotation file")
    ids = tuple(int(category["id"]) for category in categories)
    position = {category_id: k for k, category_id in enumerate(ids)}
    images: list[set] = [set() for _ in ids]
    instances = [0] * len(ids)
    for annotation in data.get("annotations", []):
        k = position.get(annotation["category_id"])
        if k is None:
            raise ValueError(f"{path}: annotation {annotation.get('id')!r} has category_id "
                             f"{annotation['category_id']!r}, which is not in 'categories'")
        images[k].add(annotation["image_id"])
        instances[k] += 1
    frequencies = [category.get("frequency") for category in categories]
    if any(f is not None for f in frequencies) and not all(f in ("r", "c", "f") for f in frequencies):
        bad = next(c for c, f in zip(categories, frequencies) if f not in ("r", "c", "f"))
        raise ValueError(f"{path}: category {bad['id']!r} has frequency {bad.get('frequency')!r}, expected r/c/f")
    return ClassStatistics(ids, tuple(frequencies) if frequencies[0] is not None else None,
                           tuple(len(s) for s in images), tuple(instances), len(data.get("images", [])))


class MMDetLoss(nn.Module):
    """An acsl classification loss as an mmdet bbox head's ``loss_cls`` (one subclass per ``LOSS_TYPES``).

    Args:
        num_classes: C; may be left out when ``ann_file`` is given (its categories), else must agree with it.
        ann_file: the training set's LVIS-format annotation file; the loss's class statistics (frequency
            groups, image and instance counts, number of images) come from it. Losses that need none
            (BCE, focal, EQLv2, statistic-free ACSL, softmax CE) accept ``num_classes`` alone.
        loss_weight: multiplies the loss, as in mmdet's losses.
        **options: the acsl loss's own options (``xi``, ``statistic_free``, ``gamma`` ...). ``seed`` (losses
            that draw at random) is offset by 1,000,003 × the process's rank, as acsl's own runs do.

    ``forward(cls_score, labels, label_weights, avg_factor)`` takes mmdet's layout. RoIs of weight 0 are left
    out; other weights than 0 and 1 are refused (the acsl losses weigh RoIs as their papers do). The loss
    is the acsl loss (Σ / N over the RoIs it sees) times N / ``avg_factor``, i.e. Σ / ``avg_factor`` as
    mmdet's losses compute it; the bbox head passes avg_factor = N. Under mmdet's distributed training
    (torch.distributed initialised by mmengine) EQLv2 all-reduces its statistics as in acsl (a bbox head
    always has RoIs: mmdet's RoI sampler adds the ground truth and samples background proposals).
    """

    loss_name: str = ""
    custom_cls_channels = True
    custom_activation = True
    custom_accuracy = True

    def __init__(self, num_classes: int | None = None, ann_file: str | os.PathLike | None = None,
                 loss_weight: float = 1.0, **options: Any) -> None:
        super().__init__()
        kind = f"{SCOPE}.{type(self).__name__}"
        statistics = class_statistics(ann_file) if ann_file is not None else None
        if statistics is None and num_classes is None:
            raise ValueError(f"{kind}: give ann_file (the training set's LVIS annotation file) or num_classes")
        count = len(statistics.category_ids) if statistics is not None else int(num_classes)
        if num_classes is not None and int(num_classes) != count:
            raise ValueError(f"{kind}: num_classes={num_classes} but {ann_file} has {count} categories")
        merged = sorted(set(options) & _CROSS_ENTROPY_OPTIONS)
        if merged:
            raise ValueError(f"{kind}: {merged} are options of mmdet's CrossEntropyLoss, merged in from the base "
                             f"config's loss_cls; write loss_cls=dict(_delete_=True, type='{kind}', ...)")
        if "seed" in inspect.signature(LOSSES[self.loss_name]).parameters:
            options["seed"] = int(options.get("seed", 0)) + _RANK_SEED_STRIDE * get_rank()
        given = {} if statistics is None else dict(
            class_frequencies=statistics.frequencies, class_image_counts=statistics.image_counts,
            class_instance_counts=statistics.instance_counts, num_images=statistics.num_images)
        try:
            self.loss = build_loss(self.loss_name, count, **given, **options)
        except ValueError as error:
            hint = "" if statistics is not None else "; the training set's statistics come from ann_file"
            raise ValueError(f"{kind}: {error}{hint}") from None
        self.loss_weight = float(loss_weight)
        self.ann_file = None if ann_file is None else str(ann_file)
        self._head = head_being_built(self, "BBoxHead")  # a weak reference (no submodule): init_weights sets its bias

    def init_weights(self) -> None:
        """Start the bbox head's classifier at the loss's prior (``ClassificationLoss.initial_bias``: sigmoid
        losses π on every column, as acsl's own detector starts), where mmdet's init leaves the bias at 0, i.e.
        p = 0.5 on every class. mmengine calls a child's ``init_weights`` after its parent's ``init_cfg`` and
        before a ``Pretrained`` one, so a config writes nothing for it and a loaded checkpoint still wins."""
        head = self._head() if self._head is not None else None
        classifier = getattr(head, "fc_cls", None)
        if classifier is None:
            return
        _check_classifier_kind(self, classifier)
        bias, weight = self.loss.initial_bias(), self.loss.initial_weight()
        if bias is not None and getattr(classifier, "bias", None) is not None:
            if classifier.bias.shape != bias.shape:
                raise ValueError(f"{SCOPE}.{type(self).__name__}: the bbox head's fc_cls has {classifier.bias.numel()} "
                                 f"outputs, the loss {bias.numel()}")
            with torch.no_grad():
                classifier.bias.copy_(self.from_acsl(bias.to(classifier.bias)[None])[0])  # background last
        if weight is not None:  # GOL: every weight a constant, as its configs' init_cfg
            with torch.no_grad():
                classifier.weight.fill_(weight)

    @property
    def num_classes(self) -> int:
        return self.loss.num_classes

    def extra_repr(self) -> str:
        return f"loss_weight={self.loss_weight}, ann_file={self.ann_file!r}"

    def to_acsl(self, cls_score: torch.Tensor, labels: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """mmdet's layout → acsl's: the last (background) column first; labels k → k + 1, C → 0 (negative
        labels stay negative, so the acsl loss refuses them)."""
        c = self.num_classes
        if cls_score.dim() != 2 or cls_score.shape[1] != c + 1:
            raise ValueError(f"{SCOPE}.{type(self).__name__}: cls_score must have shape [N, {c + 1}] (C={c} "
                             f"classes, then the background), got {tuple(cls_score.shape)}")
        logits = torch.cat([cls_score[:, c:], cls_score[:, :c]], dim=1)
        if labels is None:
            return logits, None
        labels = labels.long()
        ours = torch.where(labels == c, torch.zeros_like(labels), torch.where(labels >= 0, labels + 1, labels))
        return logits, ours

    @staticmethod
    def from_acsl(scores: torch.Tensor) -> torch.Tensor:
        """acsl's layout → mmdet's: column 0 (background) last."""
        return torch.cat([scores[:, 1:], scores[:, :1]], dim=1)

    def forward(self, cls_score: torch.Tensor, labels: torch.Tensor, label_weights: torch.Tensor | None = None,
                avg_factor: float | None = None, reduction_override: str | None = None) -> torch.Tensor:
        if reduction_override not in (None, "mean"):
            raise ValueError(f"{SCOPE}.{type(self).__name__}: reduction {reduction_override!r} is not supported; "
                             "the acsl losses reduce as their papers do (Σ / N over the RoIs)")
        if label_weights is not None:
            dropped, odd = torch.stack([(label_weights == 0).any(),
                                        ((label_weights != 0) & (label_weights != 1)).any()]).tolist()
            if odd:
                raise ValueError(f"{SCOPE}.{type(self).__name__}: RoI weights other than 0 and 1 (the rcnn "
                                 "train_cfg's pos_weight); the acsl losses weigh RoIs as their papers do")
            if dropped:
                keep = label_weights > 0
                cls_score, labels = cls_score[keep], labels[keep]
        logits, ours = self.to_acsl(cls_score, labels)
        value = self.loss(logits, ours)
        if avg_factor is not None and logits.shape[0] > 0:
            value = value * (logits.shape[0] / float(avg_factor))
        return self.loss_weight * value

    def get_cls_channels(self, num_classes: int) -> int:
        """The classifier's width, C + 1 (mmdet's ``custom_cls_channels`` protocol)."""
        if int(num_classes) != self.num_classes:
            raise ValueError(f"{SCOPE}.{type(self).__name__}: the bbox head has num_classes={num_classes}, the "
                             f"loss {self.num_classes} classes{f' (the categories of {self.ann_file})' if self.ann_file else ''}")
        return self.loss.num_logits

    def get_activation(self, cls_score: torch.Tensor) -> torch.Tensor:
        """Test-time scores ``[N, C + 1]`` in mmdet's column order (background last, which mmdet's NMS
        drops): the acsl loss's ``scores``."""
        logits, _ = self.to_acsl(cls_score)
        return self.from_acsl(self.loss.scores(logits))

    def get_accuracy(self, cls_score: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """``acc_classes``: the share (in %) of foreground RoIs whose highest foreground score is their class
        (the background column means nothing to the losses that do not train it, EQL and federated)."""
        with torch.no_grad():
            scores = self.get_activation(cls_score)[:, : self.num_classes]
            foreground = (labels >= 0) & (labels < self.num_classes)
            correct = ((scores.argmax(dim=1) == labels) & foreground).sum()
            return {"acc_classes": correct.float() * 100.0 / foreground.sum().clamp(min=1).float()}


def _check_classifier_kind(adapter: "MMDetLoss", classifier: nn.Module) -> None:
    """A loss that trains a cosine classifier (ECM) needs the bbox head's ``fc_cls`` to be mmdet's ``NormedLinear``
    at its temperature (``x/‖x‖ · w/‖w‖ · τ + b``, acsl's ``CosineClassifier``); refuse any other."""
    spec = adapter.loss.classifier_spec
    if spec.kind != "cosine":
        return
    if type(classifier).__name__ != "NormedLinear" or getattr(classifier, "tempearture", None) != spec.temperature:
        raise ValueError(f"{SCOPE}.{type(adapter).__name__} trains a cosine classifier at temperature {spec.temperature:g}: "
                         f"give the bbox head cls_predictor_cfg=dict(type='NormedLinear', tempearture={spec.temperature:g}) "
                         f"(mmdet's spelling), not {type(classifier).__name__}")


def _register_losses() -> dict[str, type[MMDetLoss]]:
    adapters = {}
    for type_name, loss_name in LOSS_TYPES.items():
        adapter = type(type_name, (MMDetLoss,), {
            "loss_name": loss_name, "__module__": __name__,
            "__doc__": f"mmdet adapter of acsl's ``{LOSSES[loss_name].__name__}`` (see ``MMDetLoss``).",
        })
        MODELS.register_module(name=type_name, module=adapter, force=True)
        adapters[type_name] = adapter
    return adapters


#: mmdet type (without the scope) → its registered adapter class, also a module attribute of that name (so
#: ``acsl.integrations.mmdet.ACSL`` is the class ``acsl.ACSL`` builds, and pickle finds it).
ADAPTERS: dict[str, type[MMDetLoss]] = _register_losses()
globals().update(ADAPTERS)
#: The one-stage losses for mmdet's anchor heads (``acsl.integrations.mmdet_dense``): ``acsl.EFL``, ``acsl.DenseFocalLoss``.
DENSE_ADAPTERS = register_dense_losses(MODELS)




def train_only(model: nn.Module, trainable: Sequence[str]) -> list[str]:
    """Set ``requires_grad`` on the parameters whose names are one of ``trainable`` or start with one of
    them and a dot, and clear it on every other; the names kept. A prefix that names nothing fails."""
    names = [name for name, _ in model.named_parameters()]
    unmatched = [p for p in trainable if not any(n == p or n.startswith(p + ".") for n in names)]
    if unmatched:
        raise ValueError(f"TrainOnlyHook: no parameter is named {unmatched} or below it; parameters start with "
                         f"{sorted({n.split('.')[0] for n in names})}")
    kept = []
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(any(name == p or name.startswith(p + ".") for p in trainable))
        if parameter.requires_grad:
            kept.append(name)
    return kept


class TrainOnlyHook(Hook):
    """Trains only the parameters under ``trainable`` (default: the classifier's final layer, the paper's
    stage 2, §4.2; docs/ARCHITECTURE.md, "The method, exactly").

    Before the run (after the optimizer is built, before a checkpoint is loaded or resumed) every other
    parameter stops requiring gradients and leaves the optimizer's parameter groups, so neither momentum,
    weight decay nor gradient clipping touches it, and its backward pass is not computed. Batch norms stay
    as the model config sets them (mmdet's ResNet: ``norm_eval=True``). Under distributed training the
    model wrapper must be built with ``find_unused_parameters=True``: DDP is built before hooks run.
    """

    priority = "VERY_HIGH"

    def __init__(self, trainable: str | Sequence[str] = ("roi_head.bbox_head.fc_cls",)) -> None:
        self.trainable = (trainable,) if isinstance(trainable, str) else tuple(trainable)
        if not self.trainable:
            raise ValueError("TrainOnlyHook: name at least one parameter prefix to train")

    def before_run(self, runner) -> None:
        model = runner.model
        if is_model_wrapper(model):
            if not getattr(model, "find_unused_parameters", True):
                raise RuntimeError("TrainOnlyHook freezes parameters after DDP is built: set model_wrapper_cfg = "
                                   "dict(type='MMDistributedDataParallel', find_unused_parameters=True)")
            model = model.module
        kept = train_only(model, self.trainable)
        frozen = {id(p) for p in model.parameters() if not p.requires_grad}
        wrapper = getattr(runner, "optim_wrapper", None)
        wrappers = list(wrapper.values()) if hasattr(wrapper, "values") and not isinstance(wrapper, dict) else [wrapper]
        for each in wrappers:
            optimizer = getattr(each, "optimizer", None)
            for group in getattr(optimizer, "param_groups", []):
                group["params"] = [p for p in group["params"] if id(p) not in frozen]
        runner.logger.info(f"TrainOnlyHook: training {len(kept)} parameter tensors ({', '.join(kept)}); "
                           f"{len(frozen)} frozen")


HOOKS.register_module(name="TrainOnlyHook", module=TrainOnlyHook, force=True)
