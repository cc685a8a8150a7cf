"""The Open Images challenge metric on hand-worked cases, one per rule, and the class hierarchy it uses."""

from __future__ import annotations

import pytest

from acsl.data.hierarchy import ClassHierarchy, hierarchy_from_tree
from acsl.evaluation.openimages_eval import average_precision, evaluate_openimages

import numpy as np

ANIMAL, MAMMAL, CAT, DOG, CAR = 1, 2, 3, 4, 5
TOY = ClassHierarchy({ANIMAL: [], MAMMAL: [ANIMAL], CAT: [MAMMAL], DOG: [MAMMAL], CAR: []})


def _truth(images, annotations):
    return {"images": images, "annotations": [{"id": i, **a} for i, a in enumerate(annotations, start=1)]}


def _det(image_id, category_id, bbox, score):
    return {"image_id": image_id, "category_id": category_id, "bbox": bbox, "score": score}


def test_three_level_hierarchy_expands_up_for_positives_and_down_for_negatives():
    assert TOY.ancestors(CAT) == {MAMMAL, ANIMAL} and TOY.ancestors(ANIMAL) == set()
    assert TOY.descendants(ANIMAL) == {MAMMAL, CAT, DOG} and TOY.descendants(CAT) == set()
    assert TOY.expand_positive([CAT]) == {CAT, MAMMAL, ANIMAL}
    assert TOY.expand_negative([MAMMAL]) == {MAMMAL, CAT, DOG}
    with pytest.raises(ValueError, match="cycle"):
        ClassHierarchy({1: [2], 2: [3], 3: [1]})


def test_open_images_hierarchy_json_skips_the_entity_root():
    tree = {"LabelName": "/m/0bl9f", "Subcategory": [
        {"LabelName": "/m/animal", "Subcategory": [{"LabelName": "/m/mammal", "Subcategory": [{"LabelName": "/m/cat"}]}]},
        {"LabelName": "/m/car"}]}
    hierarchy = hierarchy_from_tree(tree)
    assert hierarchy.parents == {"/m/animal": (), "/m/mammal": ("/m/animal",), "/m/cat": ("/m/mammal",), "/m/car": ()}
    assert hierarchy.ancestors("/m/cat") == {"/m/mammal", "/m/animal"}
    ids = hierarchy.relabel({"/m/animal": 1, "/m/cat": 3})  # /m/mammal has no id: cat links through to animal
    assert ids.parents == {1: (), 3: (1,)}
    with pytest.raises(ValueError, match=r"h.json: \$.Subcategory\[0\]: expected an object"):
        hierarchy_from_tree({"LabelName": "/m/0bl9f", "Subcategory": [{"Name": "x"}]}, source="h.json")


def test_average_precision_is_the_area_under_the_monotone_curve():
    # TP 0.9, FP 0.8, TP 0.7 over 2 boxes: precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1 → 1/2·1 + 1/2·2/3.
    ap = average_precision(np.array([0.9, 0.8, 0.7]), np.array([True, False, True]), 2)
    assert ap == pytest.approx(0.5 + 0.5 * 2 / 3)
    assert average_precision(np.array([0.5]), np.array([True]), 4) == pytest.approx(0.25)
    assert np.isnan(average_precision(np.array([0.5]), np.array([False]), 0))


def test_a_group_of_box_matched_by_three_detections_is_one_true_positive():
    truth = _truth([{"id": 1, "pos_category_ids": [CAR]}],
                   [{"image_id": 1, "category_id": CAR, "bbox": [0, 0, 100, 100], "is_group_of": True}])
    inside = [_det(1, CAR, [10 * k, 10, 20, 20], s) for k, s in ((1, 0.9), (3, 0.8), (5, 0.7))]
    result = evaluate_openimages(truth, inside)
    assert result["num_ground_truth"][CAR] == 1 and result["per_class_AP"][CAR] == pytest.approx(1.0)
    # A detection that is mostly outside the group (IoA < 0.5) is a false positive, above the group's score.
    outside = _det(1, CAR, [90, 90, 40, 40], 0.95)
    assert evaluate_openimages(truth, inside + [outside])["per_class_AP"][CAR] == pytest.approx(0.5)


def test_a_detection_of_a_class_not_verified_on_the_image_is_ignored():
    truth = _truth([{"id": 1, "pos_category_ids": [DOG]}, {"id": 2, "pos_category_ids": [CAR]}],
                   [{"image_id": 1, "category_id": DOG, "bbox": [0, 0, 50, 50]},
                    {"image_id": 2, "category_id": CAR, "bbox": [0, 0, 50, 50]}])
    found = [_det(1, DOG, [0, 0, 50, 50], 0.5), _det(2, DOG, [0, 0, 50, 50], 0.9)]  # dog not verified on image 2
    assert evaluate_openimages(truth, found)["per_class_AP"][DOG] == pytest.approx(1.0)
    truth["images"][1]["neg_category_ids"] = [DOG]  # verified absent: now the 0.9 detection is a false positive
    assert evaluate_openimages(truth, found)["per_class_AP"][DOG] == pytest.approx(0.5)


def test_a_child_detection_counts_for_its_parent():
    truth = _truth([{"id": 1, "pos_category_ids": [CAT]}],
                   [{"image_id": 1, "category_id": CAT, "bbox": [0, 0, 50, 50]}])
    found = [_det(1, CAT, [1, 1, 50, 50], 0.8)]
    result = evaluate_openimages(truth, found, hierarchy=TOY)
    assert result["num_ground_truth"] == {CAT: 1, MAMMAL: 1, ANIMAL: 1}
    assert result["per_class_AP"] == pytest.approx({CAT: 1.0, MAMMAL: 1.0, ANIMAL: 1.0})
    flat = evaluate_openimages(truth, found, hierarchy=TOY, expand_detections=False)
    assert flat["per_class_AP"][MAMMAL] == 0.0  # without expansion nobody detected the mammal


def test_a_negative_parent_label_makes_its_children_verified_negative():
    truth = _truth([{"id": 1, "pos_category_ids": [CAT]}, {"id": 2, "neg_category_ids": [MAMMAL]}],
                   [{"image_id": 1, "category_id": CAT, "bbox": [0, 0, 50, 50]}])
    found = [_det(1, CAT, [0, 0, 50, 50], 0.5), _det(2, CAT, [0, 0, 50, 50], 0.9)]
    assert evaluate_openimages(truth, found, hierarchy=TOY)["per_class_AP"][CAT] == pytest.approx(0.5)
    assert evaluate_openimages(truth, found)["per_class_AP"][CAT] == pytest.approx(1.0)  # flat: not verified


def test_duplicates_are_false_positives_and_the_mean_runs_over_classes_with_truth():
    truth = _truth([{"id": 1, "pos_category_ids": [DOG, CAR], "neg_category_ids": [CAT]}],
                   [{"image_id": 1, "category_id": DOG, "bbox": [0, 0, 50, 50]},
                    {"image_id": 1, "category_id": CAR, "bbox": [100, 100, 50, 50]}])
    found = [_det(1, DOG, [0, 0, 50, 50], 0.9), _det(1, DOG, [2, 2, 50, 50], 0.8),  # the second is a duplicate
             _det(1, CAR, [0, 0, 50, 50], 0.7), _det(1, CAT, [0, 0, 50, 50], 0.6)]  # car misplaced; cat has no truth
    result = evaluate_openimages(truth, found)
    assert result["per_class_AP"] == pytest.approx({DOG: 1.0, CAR: 0.0})
    assert result["AP50"] == pytest.approx(0.5) and CAT not in result["per_class_AP"]
    with pytest.raises(ValueError, match="image 7"):
        evaluate_openimages(truth, [_det(7, DOG, [0, 0, 1, 1], 0.5)])
