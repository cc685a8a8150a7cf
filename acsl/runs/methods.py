"""The methods of the paper's Table 4 (and a few beyond it) as experiment recipes.

Each ``Method`` says how its paper trains it, in this project's terms: end to end (stage 1, the whole
detector, the 1x schedule) or decoupled (stage 2: only the classifier, on the 1x softmax baseline —
the same stage-1 detector for every decoupled method), with which loss, image sampler and stage-2
classifier. ``method_spec`` turns one into an ``ExperimentSpec`` for a profile, so every method of a
comparison runs on the same data, detector and schedule. Hyper-parameters tied to the dataset's size
(RFS's t, EQL's λ, BAGS's group boundaries) come from the profile, by loss and sampler name
(``Profile.loss_defaults``, ``Profile.sampler_defaults``).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..profiles import get_profile
from .spec import ExperimentSpec, OptionValue


@dataclass(frozen=True)
class Method:
    """``label``: the name the paper's Table 4 prints (``in_paper``) or ours; ``source``: where it comes from."""

    label: str
    loss: str
    stage: int
    source: str
    loss_options: tuple[tuple[str, OptionValue], ...] = ()
    sampler: str = "uniform"
    classifier: str = "stage1"
    in_paper: bool = True
    architecture: str | None = None  # None: the profile's detector; "retinanet": the one-stage detector

    @property
    def training(self) -> str:
        if self.architecture == "retinanet":
            return "one-stage: RetinaNet's classification subnet fine-tuned from its own start"
        if self.loss == "norcal":  # ExperimentSpec.trained_as: the base loss's detector, its scores calibrated
            return "post hoc (the softmax baseline's detector, scores calibrated; no training)"
        return "end to end (stage 1)" if self.stage == 1 else "decoupled (stage 2 on the softmax baseline)"


METHODS: dict[str, Method] = {m.label: m for m in (
    Method("Softmax CE", "softmax_ce", 1, "the baseline (Table 2)", in_paper=False),
    Method("Focal Loss", "focal", 1, "Lin et al., ICCV 2017"),
    Method("CBL", "class_balanced", 1, "Cui et al., CVPR 2019"),
    Method("LDAM", "ldam", 1, "Cao et al., NeurIPS 2019"),
    Method("RFS", "softmax_ce", 1, "Gupta et al., CVPR 2019", sampler="repeat_factor"),
    Method("LWS", "softmax_ce", 2, "Kang et al., ICLR 2020", sampler="class_balanced", classifier="lws"),
    Method("EQL", "eql", 1, "Tan et al., CVPR 2020"),
    Method("BAGS", "bags", 2, "Li et al., CVPR 2020"),
    Method("ACSL", "acsl", 2, "this paper", loss_options=(("xi", 0.7),)),
    Method("cRT", "softmax_ce", 2, "Kang et al., ICLR 2020", sampler="class_balanced", classifier="reinit",
           in_paper=False),
    Method("EQLv2", "eqlv2", 1, "Tan et al., CVPR 2021", in_paper=False),
    Method("Seesaw", "seesaw", 1, "Wang et al., CVPR 2021", in_paper=False),
    Method("Federated loss", "federated", 1, "Zhou et al., 2021", in_paper=False),
)}

#: The long-tail losses that came after ACSL, on Table 4's setting (notebooks/beyond_after_acsl.ipynb): ACSL and
#: the softmax baseline, the two of 2021 that Table 4 runs at one seed, and four more. Beyond the paper.
AFTER_ACSL_METHODS: dict[str, Method] = {m.label: m for m in (
    METHODS["Softmax CE"], METHODS["ACSL"], METHODS["EQLv2"], METHODS["Seesaw"],
    Method("ECM", "ecm", 1, "Cho and Krähenbühl, ECCV 2022", in_paper=False),
    Method("GOL", "gol", 1, "Alexandridis et al., ECCV 2022", in_paper=False),
    Method("DropLoss", "droploss", 1, "Hsieh et al., AAAI 2021", in_paper=False),
    Method("NorCal", "norcal", 1, "Pan et al., NeurIPS 2021", in_paper=False),
)}

#: The one-stage part of that comparison: RetinaNet from its own pretrained start, its classification subnet
#: fine-tuned with each dense loss (acsl.models.retinanet, acsl.losses.DENSE_LOSSES). Beyond the paper.
ONE_STAGE_METHODS: dict[str, Method] = {m.label: m for m in (
    Method("Focal loss (RetinaNet)", "dense_focal", 1, "Lin et al., ICCV 2017 (the one-stage baseline)",
           in_paper=False, architecture="retinanet"),
    Method("EFL (RetinaNet)", "efl", 1, "Li et al., CVPR 2022", in_paper=False, architecture="retinanet"),
    Method("ACSL (RetinaNet)", "dense_acsl", 1, "this paper's rule on anchors (our adaptation, acsl.losses.dense)",
           loss_options=(("xi", 0.7),), in_paper=False, architecture="retinanet"),
)}

#: Rows of the paper's Table 4 that no code here implements (their rows keep "not run").
NOT_IMPLEMENTED = ("SimCal",)

#: Table 7 (Open Images): the methods the paper compares, trained multi-label where the loss allows.
OPENIMAGES_METHODS: dict[str, Method] = {m.label: m for m in (
    Method("Class Aware Sampling", "bce", 1, "Shen et al., ECCV 2016", sampler="class_balanced"),
    Method("Equalization Loss", "eql", 1, "Tan et al., CVPR 2020"),
    Method("ACSL", "acsl", 2, "this paper", loss_options=(("xi", 0.7),)),
)}


def method_spec(profile: str, label: str, seed: int = 0, cached: bool = False,
                detector: dict | None = None) -> ExperimentSpec:
    """The ``ExperimentSpec`` of method ``label`` (a key of ``METHODS`` or ``AFTER_ACSL_METHODS``) in
    ``profile``; ``cached``: a decoupled method's stage 2 on cached box-head features (ignored for end-to-end
    methods)."""
    table = (OPENIMAGES_METHODS if get_profile(profile).track == "openimages"
             else {**METHODS, **AFTER_ACSL_METHODS, **ONE_STAGE_METHODS})
    try:
        method = table[label]
    except KeyError:
        raise ValueError(f"unknown method {label!r} for profile {profile!r}; known methods: {', '.join(table)}") from None
    settings = get_profile(profile)
    loss_options = {**dict(method.loss_options), **settings.loss_defaults.get(method.loss, {})}
    sampler_options = settings.sampler_defaults.get(method.sampler, {})
    detector = {**(detector or {}), **({"architecture": method.architecture} if method.architecture else {})}
    return ExperimentSpec(profile=profile, loss=method.loss, loss_options=tuple(loss_options.items()), stage=method.stage,
                          seed=seed, cached=cached and method.stage == 2, detector=tuple(detector.items()),
                          sampler=method.sampler, sampler_options=tuple(sampler_options.items()),
                          classifier=method.classifier)
