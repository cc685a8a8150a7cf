"""acsl inside mmdetection 3.x (docs/ARCHITECTURE.md, "mmdet integration"): every registered loss, given
mmdet's layout (background last, label C), equals the acsl loss on the permuted inputs (value, gradient,
ACSL's background draws); test-time scores follow the loss in mmdet's column order; the classifier's
width; ``acsl.LVISMetric`` equals ``acsl.evaluation.evaluate_lvis``; a ``Shared2FCBBoxHead`` built through
mmdet's registry holds our loss; the stage-2 hook trains the classifier alone; EQLv2's statistics are
all-reduced under torch.distributed.

They run with mmcv-lite (the ``mmdet`` extra). mmcv-lite has no compiled ops (``mmcv._ext``), which
importing ``mmdet.models`` loads by name; none is called here, so when it is missing a stand-in module whose
ops raise is put in its place (``mmdet_models``)."""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import os
import subprocess
import sys
import types
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

pytest.importorskip("mmengine", reason="the mmdet extra is not installed: pip install -e '.[mmdet]'")
pytest.importorskip("mmdet", reason="the mmdet extra is not installed: pip install -e '.[mmdet]'")

from acsl.data.stats import category_image_counts, category_instance_counts  # noqa: E402
from acsl.evaluation import evaluate_lvis  # noqa: E402
from acsl.integrations import mmdet as integration  # noqa: E402
from acsl.losses import ACSL, LOSSES, build_loss  # noqa: E402

C = 6
#: File order of the categories (mmdet's label order), deliberately not sorted by id.
CATEGORY_IDS = [7, 3, 11, 2, 5, 9]
FREQUENCIES = ["f", "r", "c", "f", "c", "r"]
WORKERS = Path(__file__).parent / "workers"

#: Options for each registered loss (small enough that every rule of the loss is exercised).
OPTIONS = {
    "ACSL": {"xi": 0.7}, "SigmoidBCE": {}, "EQL": {"lambda_": 0.3}, "EQLv2": {}, "FederatedLoss": {"num_sample_classes": 4},
    "FocalLoss": {}, "ClassBalancedCE": {}, "LDAM": {}, "SoftmaxCE": {},
    "DropLoss": {"lambda_": 0.3}, "GOL": {"lambda_": 0.3}, "ECM": {}, "NorCal": {"gamma": 0.5},
}
CASES = [(name, options) for name, options in OPTIONS.items()] + [
    ("ACSL", {"statistic_free": True}), ("GOL", {"droploss": False}), ("NorCal", {"base": "eqlv2", "gamma": 0.5})]


def _lvis_file(path: Path) -> Path:
    """A small LVIS-format file: 20 images of 64 px, boxes of every category, federated fields."""
    g = torch.Generator().manual_seed(0)
    images, annotations = [], []
    for image_id in range(1, 21):
        present = sorted({CATEGORY_IDS[k] for k in torch.randint(0, C, (3,), generator=g).tolist()})
        absent = [c for c in CATEGORY_IDS if c not in present]
        images.append({"id": image_id, "file_name": f"{image_id:06d}.png", "width": 64, "height": 64,
                       "neg_category_ids": absent[:2], "not_exhaustive_category_ids": absent[2:3]})
        for category in present:
            x, y = torch.randint(0, 32, (2,), generator=g).tolist()
            w, h = torch.randint(8, 32, (2,), generator=g).tolist()
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": category,
                                "bbox": [float(x), float(y), float(w), float(h)], "area": float(w * h), "iscrowd": 0})
    categories = [{"id": c, "name": f"class_{c}", "frequency": f} for c, f in zip(CATEGORY_IDS, FREQUENCIES)]
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return path


@pytest.fixture(scope="module")
def ann_file(tmp_path_factory) -> Path:
    return _lvis_file(tmp_path_factory.mktemp("mmdet") / "lvis.json")


@pytest.fixture(scope="module")
def mmdet_models():
    """mmdet's ``MODELS`` with ``mmdet.models`` imported (its registry imports it on first use)."""
    if importlib.util.find_spec("mmcv._ext") is None:
        stand_in = types.ModuleType("mmcv._ext")

        def missing(name: str):
            if name.startswith("__"):
                raise AttributeError(name)

            def op(*_args, **_kwargs):
                raise RuntimeError(f"mmcv-lite has no compiled op {name!r}; build the full mmcv (scripts/mmdet_check.sh)")
            return op

        stand_in.__getattr__ = missing
        sys.modules["mmcv._ext"] = stand_in
    import mmdet.models  # noqa: F401
    from mmdet.registry import MODELS

    return MODELS


def _reference(name: str, ann_file: Path, options: dict):
    """The acsl loss with the statistics of ``ann_file`` in file order, counted here independently."""
    data = json.loads(ann_file.read_text())
    images, instances = category_image_counts(data), category_instance_counts(data)
    return build_loss(integration.LOSS_TYPES[name], C, FREQUENCIES, class_image_counts=[images[c] for c in CATEGORY_IDS],
                      class_instance_counts=[instances[c] for c in CATEGORY_IDS], num_images=len(data["images"]), **options)


def _batch(seed: int, n: int = 400):
    """mmdet-layout logits and labels (three quarters background, label C) and the same in acsl's layout."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, C + 1, generator=g, dtype=torch.float64) * 3
    labels = torch.where(torch.rand(n, generator=g) < 0.75, torch.full((n,), C), torch.randint(0, C, (n,), generator=g))
    ours = logits[:, [C, *range(C)]].clone()
    return logits, labels, ours, torch.where(labels == C, 0, labels + 1)


@pytest.mark.parametrize("name, options", CASES, ids=[f"{n}{'-statistic_free' if o.get('statistic_free') else ''}" for n, o in CASES])
def test_each_loss_in_mmdet_layout_equals_the_acsl_loss_on_permuted_inputs(mmdet_models, ann_file, name, options):
    adapter = mmdet_models.build(dict(type=f"acsl.{name}", ann_file=str(ann_file), **options))
    reference = _reference(name, ann_file, options)
    assert type(adapter.loss) is type(reference)
    for step in range(3):  # EQLv2's statistics and the random streams carry over from step to step
        logits, labels, ours, our_labels = _batch(step)
        logits.requires_grad_(True)
        ours.requires_grad_(True)
        value = adapter(logits, labels, torch.ones(len(labels)), avg_factor=float(len(labels)))
        expected = reference(ours, our_labels)
        assert torch.equal(value, expected), (step, value.item(), expected.item())
        value.backward()
        expected.backward()
        assert torch.equal(logits.grad[:, [C, *range(C)]], ours.grad)
    buffers = dict(adapter.loss.named_buffers())
    for key, buffer in reference.named_buffers():  # EQLv2's accumulated gradients among them
        assert torch.equal(buffers[key], buffer), key


@pytest.mark.parametrize("statistic_free", [False, True])
def test_acsl_background_draws_follow_the_seed(mmdet_models, ann_file, statistic_free):
    adapter = mmdet_models.build(dict(type="acsl.ACSL", ann_file=str(ann_file), seed=5, statistic_free=statistic_free))
    reference = _reference("ACSL", ann_file, {"seed": 5, "statistic_free": statistic_free})
    logits, labels, ours, our_labels = _batch(1, n=1200)  # about 900 background RoIs: 90 common, 9 rare draws
    masks = []
    for _ in range(2):
        masks.append(adapter.loss.weight_mask(*adapter.to_acsl(logits, labels)))
        assert torch.equal(masks[-1], reference.weight_mask(ours, our_labels))
    assert torch.equal(adapter.loss.generator.get_state(), reference.generator.get_state())
    assert torch.equal(masks[0], masks[1]) == statistic_free  # the schedule draws other RoIs each step


def test_rois_of_weight_zero_are_left_out_and_avg_factor_and_loss_weight_scale(mmdet_models, ann_file):
    adapter = mmdet_models.build(dict(type="acsl.SigmoidBCE", num_classes=C, loss_weight=2.0))
    logits, labels, ours, our_labels = _batch(3)
    weights = (torch.arange(len(labels)) % 3 != 0).double()
    keep = weights > 0
    expected = build_loss("bce", C)(ours[keep], our_labels[keep])
    assert torch.equal(adapter(logits, labels, weights, avg_factor=float(keep.sum())), 2.0 * expected)
    assert torch.allclose(adapter(logits, labels, weights, avg_factor=2.0 * float(keep.sum())), expected)
    with pytest.raises(ValueError, match="other than 0 and 1"):
        adapter(logits, labels, weights * 2)


def test_get_activation_scores_each_loss_in_mmdet_column_order(mmdet_models, ann_file):
    logits = _batch(4)[0]
    p = torch.sigmoid(logits)
    for name, options in CASES:
        adapter = mmdet_models.build(dict(type=f"acsl.{name}", ann_file=str(ann_file), **options))
        scores = adapter.get_activation(logits)
        assert scores.shape == (len(logits), C + 1)
        if name in ("EQLv2", "ECM"):  # p_c · (1 − p_bg), the background's own probability last
            assert torch.equal(scores, torch.cat([p[:, :C] * (1 - p[:, C:]), p[:, C:]], dim=1))
        elif name == "GOL":  # the Gumbel CDF on every column
            assert torch.allclose(scores, torch.exp(-torch.exp(-logits)), rtol=0, atol=1e-15)
        elif name == "NorCal":  # the base's scores of z_c − γ log N_c (image counts, file order)
            images = category_image_counts(json.loads(ann_file.read_text()))
            shift = torch.tensor([0.5 * math.log(max(images[c], 1)) for c in CATEGORY_IDS] + [0.0], dtype=logits.dtype)
            shifted = logits - shift
            q = torch.sigmoid(shifted)
            expected = (torch.cat([q[:, :C] * (1 - q[:, C:]), q[:, C:]], dim=1) if options.get("base") == "eqlv2"
                        else torch.softmax(shifted, dim=1))
            assert torch.allclose(scores, expected, rtol=0, atol=1e-12), options
        elif adapter.loss.use_sigmoid:
            assert torch.equal(scores, p), name
        else:
            scale = adapter.loss.scale if name == "LDAM" else 1.0
            assert torch.allclose(scores, torch.softmax(scale * logits, dim=1), rtol=0, atol=1e-15), name
    accuracy = adapter.get_accuracy(logits, _batch(4)[1])
    assert set(accuracy) == {"acc_classes"} and 0 <= accuracy["acc_classes"].item() <= 100


def test_get_cls_channels_gives_the_classifier_width(mmdet_models, ann_file):
    for name, options in CASES:
        adapter = mmdet_models.build(dict(type=f"acsl.{name}", ann_file=str(ann_file), **options))
        assert adapter.get_cls_channels(C) == C + 1
        assert adapter.custom_cls_channels and adapter.custom_activation and adapter.custom_accuracy
        with pytest.raises(ValueError, match="num_classes=7"):
            adapter.get_cls_channels(C + 1)


def test_every_acsl_loss_with_the_plain_c_plus_1_columns_is_registered(mmdet_models, ann_file):
    plain = {loss_name for loss_name in LOSSES
             if _reference_by_loss_name(loss_name, ann_file).classifier_spec.num_logits == C + 1}
    assert set(integration.LOSS_TYPES.values()) == plain
    for type_name in integration.LOSS_TYPES:
        assert mmdet_models.get(f"acsl.{type_name}") is getattr(integration, type_name)


def _reference_by_loss_name(loss_name: str, ann_file: Path):
    inverse = {v: k for k, v in integration.LOSS_TYPES.items()}
    if loss_name in inverse:
        return _reference(inverse[loss_name], ann_file, {})
    return build_loss(loss_name, C, FREQUENCIES, class_image_counts=[5] * C, class_instance_counts=[5] * C, num_images=20)


def test_statistics_come_from_the_annotation_file_and_options_are_checked(mmdet_models, ann_file):
    statistics = integration.class_statistics(ann_file)
    assert statistics.category_ids == tuple(CATEGORY_IDS) and statistics.frequencies == tuple(FREQUENCIES)
    with pytest.raises(ValueError, match="num_classes=5 but"):
        mmdet_models.build(dict(type="acsl.ACSL", ann_file=str(ann_file), num_classes=5))
    with pytest.raises(ValueError, match="class_frequencies.*ann_file"):
        mmdet_models.build(dict(type="acsl.ACSL", num_classes=C))
    with pytest.raises(ValueError, match="give ann_file"):
        mmdet_models.build(dict(type="acsl.EQLv2"))
    with pytest.raises(ValueError, match="_delete_=True"):  # a base config's CrossEntropyLoss merged in
        mmdet_models.build(dict(type="acsl.EQLv2", num_classes=C, use_sigmoid=False, loss_weight=1.0))


def _samples(ann_file: Path, seed: int) -> tuple[list[dict], list[dict]]:
    """mmdet data samples (boxes x1y1x2y2 float32, labels in file order) and the same detections as LVIS
    result dicts: ground-truth boxes jittered with right and wrong classes, and random boxes."""
    data = json.loads(ann_file.read_text())
    g = torch.Generator().manual_seed(seed)
    samples, detections = [], []
    for image in data["images"]:
        boxes = [a["bbox"] for a in data["annotations"] if a["image_id"] == image["id"]]
        classes = [CATEGORY_IDS.index(a["category_id"]) for a in data["annotations"] if a["image_id"] == image["id"]]
        xywh = torch.tensor(boxes + [[8.0, 8.0, 20.0, 20.0]] * 3, dtype=torch.float64)
        xywh[:, :2] += torch.rand(len(xywh), 2, generator=g, dtype=torch.float64) * 3
        labels = torch.tensor(classes + torch.randint(0, C, (3,), generator=g).tolist())
        xyxy = torch.cat([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], dim=1).float()
        scores = torch.rand(len(xywh), generator=g)
        samples.append({"img_id": image["id"], "ori_shape": (64, 64),
                        "pred_instances": {"bboxes": xyxy, "scores": scores, "labels": labels}})
        box64 = xyxy.double()
        for box, label, score in zip(box64.tolist(), labels.tolist(), scores.tolist()):
            detections.append({"image_id": image["id"], "category_id": CATEGORY_IDS[label],
                               "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]], "score": score})
    return samples, detections


def test_lvis_metric_equals_acsl_lvis_evaluation_on_the_same_detections(mmdet_models, ann_file):
    from mmdet.registry import METRICS

    metric = METRICS.build(dict(type="acsl.LVISMetric", ann_file=str(ann_file)))
    samples, detections = _samples(ann_file, seed=0)
    metric.process({}, samples[:7])
    metric.process({}, samples[7:])
    values = metric.evaluate(len(samples))
    expected = evaluate_lvis(ann_file, detections)
    names = ["AP", "AP50", "AP75", "APs", "APm", "APl", "APr", "APc", "APf"]
    assert set(values) == {f"lvis/bbox_{n}" for n in names}
    for n in names:
        got, want = values[f"lvis/bbox_{n}"], expected[n]
        assert got == want or (got == -1.0 and math.isnan(want)), n  # undefined: −1, as mmdet and lvis-api report it
    assert values["lvis/bbox_AP"] > 0.1


def test_a_shared2fc_bbox_head_built_through_mmdet_holds_our_loss_and_scores_with_it(mmdet_models, ann_file):
    head = mmdet_models.build(dict(type="Shared2FCBBoxHead", in_channels=4, fc_out_channels=16, roi_feat_size=7,
                                   num_classes=C, loss_cls=dict(type="acsl.ACSL", ann_file=str(ann_file), xi=0.7)))
    assert isinstance(head.loss_cls, integration.MMDetLoss) and isinstance(head.loss_cls.loss, ACSL)
    assert head.loss_cls.loss.xi == 0.7 and head.fc_cls.out_features == C + 1
    cls_score, bbox_pred = head(torch.randn(10, 4, 7, 7))
    rois = torch.cat([torch.zeros(10, 1), torch.tensor([[4.0, 4.0, 30.0, 30.0]]).repeat(10, 1)], dim=1)
    labels = torch.tensor([0, 1, 2, 3, 4, 5, 6, 6, 6, 6])
    losses = head.loss(cls_score, bbox_pred, rois, labels, torch.ones(10), torch.zeros(10, 4), torch.ones(10, 4))
    assert {"loss_cls", "acc_classes", "loss_bbox"} <= set(losses) and torch.isfinite(losses["loss_cls"])
    results = head._predict_by_feat_single(rois[0:3], cls_score[0:3], bbox_pred[0:3],
                                           {"img_shape": (64, 64)}, rescale=False, rcnn_test_cfg=None)
    assert torch.equal(results.scores, torch.sigmoid(cls_score[0:3]))  # not a softmax: the scores follow ACSL


@pytest.mark.parametrize("loss_cls, prior", [(dict(type="acsl.SigmoidBCE", num_classes=C), 0.01),
                                             (dict(type="acsl.EQLv2", num_classes=C), 0.001),
                                             (dict(type="acsl.SoftmaxCE", num_classes=C), None)])
def test_a_sigmoid_loss_from_a_config_starts_the_classifier_at_its_prior(mmdet_models, loss_cls, prior):
    """mmdet's init leaves fc_cls's bias at 0 (p = 0.5 on every class); with a sigmoid acsl loss the head's
    init_weights now ends at the loss's prior, with nothing written in the config; softmax keeps mmdet's init."""
    head = mmdet_models.build(dict(type="Shared2FCBBoxHead", in_channels=4, fc_out_channels=16, roi_feat_size=7,
                                   num_classes=C, loss_cls=loss_cls))
    head.init_weights()
    bias = head.fc_cls.bias.detach()
    if prior is None:
        assert torch.equal(bias, torch.zeros_like(bias))
    else:
        torch.testing.assert_close(torch.sigmoid(bias), torch.full_like(bias, prior))
    assert "_head" not in dict(head.loss_cls.named_children()) and len(list(head.loss_cls.parameters())) == 0


def test_gol_and_ecm_heads_start_as_their_authors_configs_and_ecm_needs_a_normed_linear(mmdet_models, ann_file):
    def head(loss_cls, **extra):
        built = mmdet_models.build(dict(type="Shared2FCBBoxHead", in_channels=4, fc_out_channels=16, roi_feat_size=7,
                                        num_classes=C, loss_cls=loss_cls, **extra))
        built.init_weights()
        return built

    gol = head(dict(type="acsl.GOL", ann_file=str(ann_file)))
    assert (gol.fc_cls.weight == 0.001).all() and (gol.fc_cls.bias == -2).all()  # init_cfg Constant(0.001, bias=-2)
    with pytest.raises(ValueError, match=r"cls_predictor_cfg=dict\(type='NormedLinear', tempearture=20\)"):
        head(dict(type="acsl.ECM", ann_file=str(ann_file)))
    ecm = head(dict(type="acsl.ECM", ann_file=str(ann_file)), cls_predictor_cfg=dict(type="NormedLinear", tempearture=20))
    assert type(ecm.fc_cls).__name__ == "NormedLinear" and (ecm.fc_cls.bias == 0).all()
    features = torch.randn(5, 16)
    ours = integration.ADAPTERS["ECM"]  # mmdet's NormedLinear is acsl's cosine classifier, background last
    from acsl.layers.classifiers import CosineClassifier

    cosine = CosineClassifier(16, C + 1)
    with torch.no_grad():
        cosine.weight.copy_(ecm.fc_cls.weight)
        cosine.bias.copy_(ecm.fc_cls.bias)
    assert ours is type(ecm.loss_cls) and torch.allclose(ecm.fc_cls(features), cosine(features), atol=1e-6)


def test_train_only_hook_leaves_the_classifier_alone_trainable_and_in_the_optimizer(mmdet_models):
    from mmdet.registry import HOOKS
    from mmengine.optim import OptimWrapper

    model = torch.nn.Module()
    model.backbone = torch.nn.Linear(3, 3)
    model.roi_head = torch.nn.Module()
    model.roi_head.bbox_head = torch.nn.ModuleDict({"fc_cls": torch.nn.Linear(3, 4), "fc_cls_extra": torch.nn.Linear(3, 1)})
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    runner = SimpleNamespace(model=model, optim_wrapper=OptimWrapper(optimizer), logger=logging.getLogger("test"))
    HOOKS.build(dict(type="acsl.TrainOnlyHook")).before_run(runner)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable == ["roi_head.bbox_head.fc_cls.weight", "roi_head.bbox_head.fc_cls.bias"]
    assert [p for group in optimizer.param_groups for p in group["params"]] == list(model.roi_head.bbox_head.fc_cls.parameters())
    with pytest.raises(ValueError, match="no parameter is named"):
        HOOKS.build(dict(type="acsl.TrainOnlyHook", trainable=["roi_head.fc"])).before_run(runner)


def test_eqlv2_statistics_are_all_reduced_across_processes(tmp_path):
    sys.path.insert(0, str(WORKERS))
    from eqlv2_sync import batch

    out = tmp_path / "states.json"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               str(WORKERS / "mmdet_eqlv2_sync.py"), str(out)]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert finished.returncode == 0, finished.stderr[-4000:]
    rank0, rank1 = json.loads(out.read_text())
    assert rank0 == rank1 and sum(rank0["pos"]) > 0
    single = build_loss("eqlv2", 12)  # one process fed both ranks' batches (acsl layout) at each step
    for step in range(3):
        (l0, y0), (l1, y1) = batch(0, step), batch(1, step)
        single(torch.cat([l0, l1]).requires_grad_(True), torch.cat([y0, y1]))
    assert rank0["pos"] == pytest.approx(single.pos_grad.tolist()) and rank0["neg"] == pytest.approx(single.neg_grad.tolist())


def test_a_config_on_an_mmdet_base_reads_with_the_mmdet_extra(tmp_path):
    """``_base_ = "mmdet::…"`` is resolved by mmengine through pkg_resources, which the extra's setuptools < 81
    still ships (81 removed it: ``No module named 'pkg_resources'``)."""
    from mmengine import Config

    config = tmp_path / "config.py"
    config.write_text('_base_ = "mmdet::_base_/default_runtime.py"\n')
    assert Config.fromfile(str(config)).default_scope == "mmdet"


def test_the_mmdet_check_fails_unless_the_loss_falls_and_the_ap_is_above_zero():
    """scripts/mmdet_check.py (which needs the full mmcv, built by scripts/mmdet_check.sh) judges each stage."""
    spec = importlib.util.spec_from_file_location("mmdet_check", Path(__file__).parents[1] / "scripts" / "mmdet_check.py")
    check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(check)
    falling = {"losses": [{"loss": v} for v in (3.0, 2.9, 2.5, 2.0, 1.8, 1.5, 1.4, 1.2)], "metrics": {"bbox_AP": 0.02}}
    assert check.failures("stage 1", falling, "loss") == []
    flat = {"losses": [{"loss": 2.0}] * 8, "metrics": {"bbox_AP": -1.0}}
    assert check.failures("stage 1", flat, "loss") == [
        "stage 1: loss did not fall (2.0000 over the first 2 iterations, 2.0000 over the last 2)",
        "stage 1: bbox_AP is -1.0, not above 0"]


def test_the_dense_losses_in_an_anchor_heads_layout_equal_the_acsl_loss_and_start_at_their_prior(mmdet_models):
    from acsl.losses.efl import EqualizedFocalLoss

    head = mmdet_models.build(dict(
        type="RetinaHead", num_classes=C, in_channels=8, stacked_convs=1, feat_channels=8,
        anchor_generator=dict(type="AnchorGenerator", octave_base_scale=4, scales_per_octave=1, ratios=[1.0],
                              strides=[8]),
        loss_cls=dict(type="acsl.EFL", num_classes=C, use_sigmoid=True)))
    assert head.cls_out_channels == C and isinstance(head.loss_cls.loss, EqualizedFocalLoss)
    head.init_weights()
    torch.testing.assert_close(torch.sigmoid(head.retina_cls.bias), torch.full((C,), 0.001))  # EFL's prior, not 0.01
    reference = EqualizedFocalLoss(C)
    g = torch.Generator().manual_seed(0)
    for step in range(2):  # EFL's statistics carry over
        scores = torch.randn(60, C, generator=g, dtype=torch.float64)
        labels = torch.where(torch.rand(60, generator=g) < 0.2, torch.randint(0, C, (60,), generator=g), C)
        weights = (torch.arange(60) % 7 != 0).double()  # ignored anchors weigh 0
        ours = torch.where(weights > 0, torch.where(labels == C, 0, labels + 1), -1)
        a, b = scores.clone().requires_grad_(True), scores.clone().requires_grad_(True)
        value = head.loss_cls(a, labels, weights, avg_factor=5.0)
        expected = reference(b, ours, 5.0)
        assert torch.equal(value, expected)
        value.backward()
        expected.backward()
        assert torch.equal(a.grad, b.grad) and torch.equal(head.loss_cls.loss.pos_neg, reference.pos_neg)
    with pytest.raises(ValueError, match="set use_sigmoid=True"):
        mmdet_models.build(dict(type="acsl.DenseFocalLoss", num_classes=C, use_sigmoid=False))
    with pytest.raises(RuntimeError, match="anchor weights other than 0 and 1"):
        head.loss_cls(scores, labels, weights * 0.5, avg_factor=5.0)


def test_dense_acsl_reads_its_groups_from_the_annotation_file_in_mmdets_order(mmdet_models, ann_file):
    from acsl.losses.dense import DenseACSL

    adapter = mmdet_models.build(dict(type="acsl.DenseACSL", num_classes=C, ann_file=str(ann_file), seed=3))
    reference = DenseACSL(C, FREQUENCIES, seed=3)
    assert torch.equal(adapter.loss.groups, reference.groups)
    scores = torch.randn(300, C, dtype=torch.float64)
    labels = torch.where(torch.rand(300) < 0.1, torch.randint(0, C, (300,)), C)
    ours = torch.where(labels == C, 0, labels + 1)
    assert torch.equal(adapter(scores, labels, avg_factor=4.0), reference(scores, ours, 4.0))
    with pytest.raises(ValueError, match="give ann_file"):
        mmdet_models.build(dict(type="acsl.DenseACSL", num_classes=C))
