"""The interface every classification loss of the RoI box head follows.

Layout of the logits (torchvision's convention): ``logits`` has shape ``[N, C + 1]`` for N RoIs and C
foreground classes; column 0 is the background, columns 1..C are the foreground classes, and
``labels`` holds 0 for background RoIs and 1..C for foreground ones.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.distributed as dist
from torch import nn

from ..layers.classifiers import ClassifierSpec

FREQUENCY_GROUPS = ("r", "c", "f")


class ClassificationLoss(nn.Module):
    """Base class: ``forward(logits, labels)`` gives the scalar loss, ``scores(logits)`` the test-time
    class probabilities ``[N, C + 1]`` (column 0 background), which the detector's post-processing uses.

    ``use_sigmoid`` tells whether the loss trains independent sigmoid classifiers (scores are
    ``sigmoid(z)``) or a softmax over the C + 1 columns.
    """

    use_sigmoid: bool = False
    #: Losses that need the training set's counts (``class_image_counts``, ``class_instance_counts``,
    #: ``num_images``) set this; ``build_loss`` then passes them.
    requires_counts: bool = False
    #: Prior probability of the sigmoid classifiers' initial bias (``initial_bias``); each sigmoid loss
    #: uses its authors' value and says where it comes from.
    prior_probability: float = 0.01
    #: Bumped whenever the loss's default behaviour changes under the same options (a fix that makes it
    #: follow its authors' code, a new initial prior). A non-zero revision enters the experiment spec's
    #: hash (``acsl.runs.spec.ExperimentSpec.resolved``), so runs stored under an older behaviour are not
    #: returned as results of the new one; revision 0 leaves the hash as it was before revisions existed.
    revision: int = 0
    #: Losses that keep statistics over all processes (EQLv2) all-reduce them only while this is True; a
    #: code path that runs on one rank of a distributed run (the cached stage 2) turns it off.
    sync_across_processes: bool = True
    #: Losses that train several positive columns per RoI (Open Images' multi-label setting: a box's class
    #: and its ancestors) once ``set_label_hierarchy`` is called.
    supports_multi_label: bool = False
    #: On the CPU a loss checks its inputs on the host and draws with its host generator; off the CPU nothing
    #: reads a value back (``acsl.losses.draws``). True runs the device path on the CPU too (the tests' check
    #: that the device path reads nothing back).
    device_path_on_cpu: bool = False

    def __init__(self, num_classes: int, class_frequencies: Sequence[str] | None = None) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1 (foreground classes), got {num_classes}")
        self.num_classes = int(num_classes)
        self.class_frequencies = _check_frequencies(class_frequencies, self.num_classes)
        self.register_buffer("label_targets", None, persistent=False)  # set_label_hierarchy fills it

    def set_label_hierarchy(self, ancestors: Sequence[Sequence[int]] | None) -> None:
        """Multi-label targets (the paper's §5 "multiple label setting" on Open Images): a RoI of class k is
        positive on column k and on the columns of k's ancestors, ``ancestors[k - 1]`` (labels 1..C);
        background RoIs stay positive on column 0 alone. None: back to one-hot targets."""
        if ancestors is None:
            self.label_targets = None
            return
        if not self.supports_multi_label:
            supported = ", ".join(multi_label_losses())
            raise ValueError(f"{type(self).__name__} trains one positive column per RoI; multi-label targets "
                             f"(a class and its ancestors) are supported by {supported}")
        if len(ancestors) != self.num_classes:
            raise ValueError(f"set_label_hierarchy: expected the ancestors of {self.num_classes} classes, got {len(ancestors)}")
        targets = torch.eye(self.num_classes + 1, dtype=torch.bool, device=self.label_targets.device
                            if self.label_targets is not None else None)
        for label, parents in enumerate(ancestors, start=1):
            for parent in parents:
                if not 1 <= int(parent) <= self.num_classes or int(parent) == label:
                    raise ValueError(f"set_label_hierarchy: class {label} has ancestor {parent!r}; expected another "
                                     f"label in 1..{self.num_classes}")
                targets[label, int(parent)] = True
        self.label_targets = targets

    def target_matrix(self, labels: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """``[N, C + 1]`` targets: one-hot, or multi-hot with ancestors after ``set_label_hierarchy``."""
        hierarchy = getattr(self, "label_targets", None)
        if hierarchy is None:
            return one_hot_targets(labels, self.num_classes + 1, dtype)
        return hierarchy.to(labels.device)[labels].to(dtype)

    @property
    def multi_label(self) -> bool:
        return getattr(self, "label_targets", None) is not None

    def _frequency_below(self, class_image_counts: Sequence[int] | None, num_images: int | None,
                         lambda_: float) -> torch.Tensor:
        """Per class, whether its image frequency (images containing it / training images) is below λ (EQL's
        and DropLoss's tail), after checking the counts, ``num_images`` ≥ 1 and λ ≥ 0."""
        counts = self._check_counts("class_image_counts", class_image_counts)
        if not num_images or num_images < 1:
            raise ValueError(f"{type(self).__name__} needs num_images >= 1 (training images), got {num_images!r}")
        if lambda_ < 0:
            raise ValueError(f"{type(self).__name__}: lambda_ must be >= 0, got {lambda_!r}")
        return counts / num_images < lambda_

    def _check_counts(self, name: str, counts: Sequence[int] | None) -> torch.Tensor:
        """One non-negative count per foreground class, as float64."""
        if counts is None:
            raise ValueError(f"{type(self).__name__} needs {name} (one count per foreground class from the training set)")
        values = torch.as_tensor(list(counts), dtype=torch.float64)
        if values.shape != (self.num_classes,) or bool((values < 0).any()):
            raise ValueError(f"{type(self).__name__}: {name} must hold {self.num_classes} non-negative counts, "
                             f"got {values.numel()} values (min {values.min().item() if values.numel() else 'n/a'})")
        return values

    @property
    def num_logits(self) -> int:
        """Width of the classifier's output: C + 1 here; losses with extra columns (Seesaw's objectness,
        BAGS's "others") say more."""
        return self.num_classes + 1

    @property
    def classifier_spec(self) -> ClassifierSpec:
        """The box head's final classification layer this loss trains, declared, not built (the detector
        builds it, ``acsl.models.classifiers.install_classifier``): ``nn.Linear`` to ``num_logits``
        outputs unless the method prescribes another (Seesaw: a cosine classifier, its §3.3)."""
        return ClassifierSpec("linear", self.num_logits)

    @property
    def uses_plain_linear_classifier(self) -> bool:
        """Whether the declared classifier is torchvision's plain C + 1 ``nn.Linear`` (what cRT's and LWS's
        stage-2 classifier modes need, Kang et al. §4.2)."""
        return self.classifier_spec.is_plain(self.num_classes)

    def initial_bias(self) -> torch.Tensor | None:
        """Initial bias of the C + 1 classifier outputs, or None for the layer's default.

        Sigmoid classifiers start from a prior probability π on every column, b = −log((1 − π) / π)
        (Lin et al., Focal Loss, §3.3 "Initialization"), so that end-to-end training does not start with
        C + 1 confident mistakes per RoI. π is the loss's ``prior_probability``: 0.01 unless the method's
        own code uses another value (EQL and EQLv2: 0.001). Decoupled stage 2 overwrites it with the
        stage-1 weights.
        """
        if self.use_sigmoid:
            prior = self.prior_probability
            return torch.full((self.num_classes + 1,), -math.log((1 - prior) / prior))
        return None

    @staticmethod
    def trained_as(options: dict) -> tuple[str, dict] | None:
        """For a test-time transform of another loss's detector (NorCal): the loss name and options whose
        training it is, so the run store evaluates that loss's trained detector instead of training the same
        weights again (``acsl.runs.spec.ExperimentSpec.trained_as``); None for a loss that trains its own."""
        return None

    def initial_weight(self) -> float | None:
        """A constant every weight of the classifier starts from, or None for the layer's own initialisation
        (every loss but GOL, whose authors start each weight at 0.001)."""
        return None

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Check the shapes and the labels, give an empty batch a zero loss that still has a gradient, and
        compute the loss in ``loss`` on float32 logits when they come in half precision (AMP): the sums run
        over N × (C + 1) terms. Finiteness is checked on the reduced loss, and the logits are searched for the
        non-finite values only when it is not finite (a check of all N × (C + 1) logits cost a fifth of
        ACSL's step, ``benchmarks/bench_losses.py``). On CUDA nothing here waits for the device: the labels
        are checked asynchronously and a non-finite loss is left to the training loop, which names the step."""
        self._check_inputs(logits, labels)
        if logits.shape[0] == 0:
            self.on_empty_batch(logits.device)
            return logits.sum() * 0.0
        z = logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits
        value = self.loss(z, labels.long())
        if self.on_host(value) and not torch.isfinite(value.detach()):
            self._diagnose_non_finite(logits)
        return value

    def on_host(self, tensor: torch.Tensor) -> bool:
        """Whether work on ``tensor`` may read values back to the host: on the CPU (``device_path_on_cpu``
        aside); on a GPU the checks and draws stay on the device."""
        return tensor.device.type == "cpu" and not self.device_path_on_cpu

    def on_empty_batch(self, device: torch.device) -> None:
        """Called instead of ``loss`` for a batch without RoIs: losses that all-reduce statistics join the
        collective here, so a rank with an empty batch never leaves the others waiting."""

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The loss of a non-empty batch (``forward`` has checked the inputs)."""
        raise NotImplementedError

    def scores(self, logits: torch.Tensor) -> torch.Tensor:
        """Test-time probabilities, shape ``[N, C + 1]``; column 0 (background) is dropped by the detector."""
        if self.use_sigmoid:
            return torch.sigmoid(logits)
        return torch.softmax(logits, dim=-1)

    def _check_inputs(self, logits: torch.Tensor, labels: torch.Tensor) -> None:
        if logits.dim() != 2 or logits.shape[1] != self.num_logits:
            extra = self.num_logits - self.num_classes - 1
            raise ValueError(
                f"{type(self).__name__}: logits must have shape [N, {self.num_logits}] "
                f"(C={self.num_classes} foreground classes + background column 0"
                f"{f' + {extra} extra columns' if extra else ''}), got {tuple(logits.shape)}"
            )
        if labels.shape != logits.shape[:1]:
            raise ValueError(f"{type(self).__name__}: labels must have shape [{logits.shape[0]}], got {tuple(labels.shape)}")
        if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
            raise ValueError(f"{type(self).__name__}: labels must be integer class indices, got dtype {labels.dtype}")
        if logits.shape[0] == 0:
            return
        message = (f"{type(self).__name__}: labels must lie in 0..{self.num_classes} (0 background, "
                   f"1..{self.num_classes} the foreground classes)")
        if not self.on_host(labels):  # no wait for the device: a bad label stops it with this message
            torch._assert_async(((labels >= 0) & (labels <= self.num_classes)).all(), message)
            return
        if labels.min() < 0 or labels.max() > self.num_classes:  # N labels: cheap on the CPU
            bad = labels[(labels < 0) | (labels > self.num_classes)]
            raise ValueError(f"{message}, got {bad[:5].tolist()}{f' and {bad.numel() - 5} more' if bad.numel() > 5 else ''}")

    def _diagnose_non_finite(self, logits: torch.Tensor) -> None:
        """Name the non-finite logits behind a non-finite loss (``FloatingPointError``); a loss made non-finite
        by finite logits (an overflow inside the loss) is named as such."""
        bad = ~torch.isfinite(logits.detach())
        non_finite = int(bad.sum())
        if non_finite:
            rows = bad.any(dim=1).nonzero().flatten()
            raise FloatingPointError(f"{type(self).__name__}: logits hold {non_finite} non-finite values (NaN or "
                                     f"inf) in {rows.numel()} of {logits.shape[0]} RoIs (first: RoI {rows[0].item()}); "
                                     "the classifier diverged: lower the lr or check the inputs")
        raise FloatingPointError(f"{type(self).__name__}: the loss is not finite though every logit is; "
                                 "lower the lr or check the inputs")


class SeededDraws:
    """For losses that draw at random (ACSL's background RoIs, the federated loss's classes, BAGS's
    "others"): their own ``torch.Generator``, whose state travels with the module's state dict, so a
    resumed run draws what an uninterrupted one would. Put it before ``ClassificationLoss`` in the bases.

    On the CPU the draws come from ``generator``. A loss on another device draws there (``acsl.losses.draws``,
    no value read back to the host) from a generator on that device, seeded from the same seed and created on
    first use (``generator_for``); its state is saved too. A loss moved to another device mid-run starts that
    device's stream from the saved (or seeded) state again."""

    #: The device generator's seed is the CPU one's plus this, so the two streams are not the same numbers.
    DEVICE_SEED_OFFSET = 7919

    def seed_generator(self, seed: int) -> None:
        self.seed = int(seed)
        self.generator = torch.Generator().manual_seed(self.seed)
        self._device_generator: torch.Generator | None = None
        self._device_generator_state: torch.Tensor | None = None  # loaded before the device generator exists

    def generator_for(self, device: torch.device) -> torch.Generator:
        """``generator`` on the CPU; elsewhere the loss's generator on ``device`` (module docstring)."""
        if device.type == "cpu":
            return self.generator
        if self._device_generator is None or self._device_generator.device != device:
            self._device_generator = torch.Generator(device=device).manual_seed(self.seed + self.DEVICE_SEED_OFFSET)
            if self._device_generator_state is not None:
                self._device_generator.set_state(self._device_generator_state)
        return self._device_generator

    def get_extra_state(self) -> dict:
        state = {"generator_state": self.generator.get_state()}
        if self._device_generator is not None:
            state["device_generator_state"] = self._device_generator.get_state()
        elif self._device_generator_state is not None:  # loaded, not used since: saved again as it came
            state["device_generator_state"] = self._device_generator_state
        return state

    def set_extra_state(self, state: dict) -> None:
        self.generator.set_state(state["generator_state"].cpu())
        if "device_generator_state" in state:
            self._device_generator_state = state["device_generator_state"].cpu()
            if self._device_generator is not None:
                self._device_generator.set_state(self._device_generator_state)


def summed_over_processes(values: torch.Tensor, enabled: bool = True) -> torch.Tensor:
    """``values`` summed over every process of a running ``torch.distributed`` group (all-reduce SUM; on the GPU
    for NCCL), for the statistics some losses accumulate (EQLv2, Seesaw, EFL); as they are without a group or
    when not ``enabled`` (a path that runs on one rank alone)."""
    if enabled and dist.is_available() and dist.is_initialized():
        if dist.get_backend() == "nccl" and not values.is_cuda:
            values = values.cuda()
        dist.all_reduce(values)
    return values


def multi_label_losses() -> list[str]:
    """Registered names (``acsl.losses.registry.LOSSES``, sorted) of the losses whose class supports
    multi-label targets (``supports_multi_label``). The registry imports every loss module, this one
    included, so it is imported here, when the list is needed, not at module load."""
    from .registry import LOSSES

    return sorted(name for name, cls in LOSSES.items() if cls.supports_multi_label)


def _check_frequencies(class_frequencies: Sequence[str] | None, num_classes: int) -> tuple[str, ...] | None:
    if class_frequencies is None:
        return None
    freqs = tuple(class_frequencies)
    if len(freqs) != num_classes:
        raise ValueError(
            f"class_frequencies must give one of {FREQUENCY_GROUPS} per foreground class "
            f"({num_classes} expected), got {len(freqs)}"
        )
    bad = sorted({f for f in freqs if f not in FREQUENCY_GROUPS})
    if bad:
        raise ValueError(f"class_frequencies may only contain {FREQUENCY_GROUPS}, found {bad}")
    return freqs


def one_hot_targets(labels: torch.Tensor, num_columns: int, dtype: torch.dtype) -> torch.Tensor:
    """``[N, num_columns]`` one-hot matrix of ``labels`` (0 = background column), built directly in
    ``dtype`` (no int64 intermediate)."""
    targets = torch.zeros(labels.shape[0], num_columns, dtype=dtype, device=labels.device)
    return targets.scatter_(1, labels.long().unsqueeze(1), 1.0)
