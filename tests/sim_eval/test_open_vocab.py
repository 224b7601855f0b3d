"""Open-vocabulary metrics on hand-made 4×6 frames; every expected value is counted by hand in the comments."""

from __future__ import annotations

import math

import numpy as np
import pytest

from perovss_ros.core.errors import InvalidInputError
from perovss_ros.core.types import Segment
from perovss_ros.eval.open_vocab import (
    CategoryTable,
    OpenVocabScorer,
    PersonalTruth,
    PredictedSegment,
    compare_runs,
    predicted_segments,
)
from perovss_ros.eval.plots import segment_caption

H, W = 4, 6
# Objects: 1 = my_mug (personal, mug) rows 0-1 cols 0-1 (4 px); 2 = another mug rows 0-1 cols 3-4 (4 px);
# 3 = a ball rows 2-3 cols 0-2 (6 px).
OBJECTS = np.zeros((H, W), np.uint16)
OBJECTS[0:2, 0:2] = 1
OBJECTS[0:2, 3:5] = 2
OBJECTS[2:4, 0:3] = 3
CLASSES = np.zeros((H, W), np.uint16)
CLASSES[OBJECTS == 1] = 1
CLASSES[OBJECTS == 2] = 1
CLASSES[OBJECTS == 3] = 2
PERSONAL_GT = (OBJECTS == 1).astype(np.uint16)
TABLE = CategoryTable(class_names={1: "mug", 2: "ball"}, object_categories={1: "mug", 2: "mug", 3: "ball"})
MY_MUG = [PersonalTruth("my_mug", 1)]


def _mask(*cells: tuple[int, int]) -> np.ndarray:
    m = np.zeros((H, W), bool)
    for r, c in cells:
        m[r, c] = True
    return m


def frame_one() -> list[PredictedSegment]:
    # my_mug: its 4 pixels and (0, 2): 5 px, 4 on the object. A generic mug on the top row of the other mug
    # (2 of its 4 px, IoU 0.5). A generic ball on rows 2-3 cols 1-2 (4 of its 6 px, IoU 4/6).
    mine = _mask((0, 0), (0, 1), (1, 0), (1, 1), (0, 2))
    mug = _mask((0, 3), (0, 4))
    ball = _mask((2, 1), (2, 2), (3, 1), (3, 2))
    return [PredictedSegment("my_mug", "mug", True, mine), PredictedSegment("mug", "mug", False, mug),
            PredictedSegment("ball", "ball", False, ball)]


def frame_two() -> list[PredictedSegment]:
    # my_mug is taken for the other mug: its 4 pixels and (0, 5): 5 px, 4 on the look-alike. Nothing else.
    wrong = _mask((0, 3), (0, 4), (1, 3), (1, 4), (0, 5))
    return [PredictedSegment("my_mug", "mug", True, wrong)]


def test_one_frame_by_hand():
    scorer = OpenVocabScorer()
    numbers = scorer.add(frame_one(), MY_MUG, TABLE, PERSONAL_GT, CLASSES, OBJECTS)
    s = scorer.summary()
    assert s["personal"]["my_mug"]["iou_per"] == pytest.approx(4 / 5)
    # mug: predicted 5 + 2 = 7 px, ground truth 8, both 4 + 2 = 6 -> 6 / 9; ball: 4 / 6.
    assert s["generic"]["per_class"]["mug"]["iou"] == pytest.approx(6 / 9)
    assert s["generic"]["per_class"]["ball"]["iou"] == pytest.approx(4 / 6)
    assert s["generic"]["miou"] == pytest.approx((6 / 9 + 4 / 6) / 2)
    assert numbers["category_iou"] == pytest.approx((6 / 9 + 4 / 6) / 2)
    # The other mug is the only same-category look-alike; nothing of my_mug lies on it.
    assert s["lookalike_fp"]["object_frames"] == 1 and s["lookalike_fp"]["as_personal"] == 0
    # All three objects have a segment of their category at IoU >= 0.5 (0.8, exactly 0.5, 4/6).
    assert s["right_category"]["object_frames"] == 3 and s["right_category"]["right"] == 3
    assert s["labelled_segments"] == 3 and s["frames"] == 1


def test_two_frames_accumulate_by_hand():
    scorer = OpenVocabScorer()
    scorer.add(frame_one(), MY_MUG, TABLE, PERSONAL_GT, CLASSES, OBJECTS)
    scorer.add(frame_two(), MY_MUG, TABLE, PERSONAL_GT, CLASSES, OBJECTS)
    s = scorer.summary()
    # IoU^per sums over frames: (4 + 0) / (5 + 9); frame 2's union is my_mug's 4 px and the 5 predicted.
    assert s["personal"]["my_mug"]["iou_per"] == pytest.approx(4 / 14)
    assert s["personal"]["my_mug"]["miou_frames"] == pytest.approx((0.8 + 0.0) / 2)
    # mug: frame 2 adds 4 px both, union 8 + 5 - 4 = 9 -> (6 + 4) / (9 + 9); ball: frame 2 misses 6 px -> 4 / 12.
    assert s["generic"]["per_class"]["mug"]["iou"] == pytest.approx(10 / 18)
    assert s["generic"]["per_class"]["ball"]["iou"] == pytest.approx(4 / 12)
    assert s["generic"]["miou"] == pytest.approx((10 / 18 + 4 / 12) / 2)
    # Frame 2: 4 of my_mug's 5 px on the other mug -> one false positive of two object-frames.
    assert s["lookalike_fp"]["per_concept"]["my_mug"] == {"object_frames": 2, "as_personal": 1, "fraction": 0.5}
    # Frame 2: only the other mug is right (the personal segment's category, IoU 4/5); 3 + 1 of 6.
    right = s["right_category"]
    assert right["right"] == 4 and right["object_frames"] == 6
    assert right["per_class"]["mug"] == {"object_frames": 4, "right": 3, "fraction": 0.75}
    assert right["per_class"]["ball"] == {"object_frames": 2, "right": 1, "fraction": 0.5}
    # Without my_mug's own object (id 1): the other mug twice and the ball twice, right in 3 (ball missed in 2).
    assert right["non_personal"] == {"object_frames": 4, "right": 3, "fraction": 0.75}


def test_vocabulary_and_background_pixels():
    # A "book" over two background pixels and nothing else: book has no ground truth, so its IoU is 0
    # (predicted, never there); "bottle" is neither seen nor predicted and is left out of the mean.
    book = PredictedSegment("book", "book", False, _mask((3, 4), (3, 5)))
    scorer = OpenVocabScorer(vocabulary=["mug", "book", "bottle"])
    scorer.add([book], MY_MUG, TABLE, PERSONAL_GT, CLASSES, OBJECTS)
    g = scorer.summary()["generic"]
    assert g["vocabulary"] == ["mug", "book", "bottle"]
    assert g["per_class"]["book"]["iou"] == 0.0 and g["per_class"]["book"]["pred_pixels"] == 2
    assert math.isnan(g["per_class"]["bottle"]["iou"])
    assert g["per_class"]["mug"]["iou"] == 0.0
    assert g["miou"] == 0.0  # mean of mug 0 and book 0


def test_off_vocabulary_classes_and_table_vocabulary():
    # The table says only "mug" is an object word: ball is then off the vocabulary, and frame one's ball
    # segment labels 4 of its 6 pixels.
    table = CategoryTable(TABLE.class_names, TABLE.object_categories, vocabulary=("mug",))
    scorer = OpenVocabScorer()
    scorer.add(frame_one(), MY_MUG, table, PERSONAL_GT, CLASSES, OBJECTS)
    s = scorer.summary()
    assert s["generic"]["vocabulary"] == ["mug"] and s["generic"]["miou"] == pytest.approx(6 / 9)
    assert s["off_vocabulary"] == {"ball": {"gt_pixels": 6, "labelled_pixels": 4, "fraction": 4 / 6}}


def test_the_last_segment_covering_a_pixel_gives_its_category():
    # A ball segment over the whole ball, then a mug segment over its left column (2 px): those become mug.
    ball = PredictedSegment("ball", "ball", False, OBJECTS == 3)
    mug = PredictedSegment("mug", "mug", False, _mask((2, 0), (3, 0)))
    scorer = OpenVocabScorer(vocabulary=["ball"])
    scorer.add([ball, mug], MY_MUG, TABLE, None, CLASSES)
    assert scorer.summary()["generic"]["per_class"]["ball"]["iou"] == pytest.approx(4 / 6)


def test_segments_from_an_instance_mask():
    mask = np.zeros((H, W), np.uint16)
    mask[OBJECTS == 1] = 7
    segs = predicted_segments(mask, [Segment("my_mug", 7, 0.9, (0.0, 0.0, 2.0, 2.0), personal=True)])
    assert len(segs) == 1 and segs[0].category is None and segs[0].personal
    assert np.array_equal(segs[0].mask, OBJECTS == 1)
    scorer = OpenVocabScorer()
    scorer.add(segs, MY_MUG, TABLE, PERSONAL_GT, CLASSES, OBJECTS)
    s = scorer.summary()
    assert s["personal"]["my_mug"]["iou_per"] == 1.0 and s["labelled_segments"] == 0


def test_segment_captions():
    assert segment_caption("my_mug", "mug", True) == "my_mug (mug)"
    assert segment_caption("my_mug", None, True) == "my_mug"
    assert segment_caption("mug", "mug", False) == "mug"
    assert segment_caption("segment_3", None, False) == "segment_3"


def test_bad_masks_are_refused():
    scorer = OpenVocabScorer()
    with pytest.raises(InvalidInputError, match="differs"):
        scorer.add([PredictedSegment("mug", "mug", False, np.zeros((2, 2), bool))], MY_MUG, TABLE, PERSONAL_GT,
                   CLASSES)


def test_generic_miou_outside_the_personal_objects_by_hand():
    taught = OpenVocabScorer()
    taught.add(frame_one(), MY_MUG, TABLE, PERSONAL_GT, CLASSES, OBJECTS)
    # Untaught: the same frame, my_mug's object named "mug" by the generic path with half its pixels, (0, 0-1).
    untaught = OpenVocabScorer()
    untaught.add([PredictedSegment("mug", "mug", False, _mask((0, 0), (0, 1))), *frame_one()[1:]], [], TABLE,
                 PERSONAL_GT, CLASSES, OBJECTS)
    t, u = taught.summary()["generic"], untaught.summary()["generic"]
    # Plain, untaught: mug predicted (0, 0-1) and (0, 3-4), 4 of the 8 mug px -> 4 / 8; ball 4 / 6 as before.
    assert u["miou"] == pytest.approx((4 / 8 + 4 / 6) / 2)
    assert t["miou"] == pytest.approx((6 / 9 + 4 / 6) / 2)
    # Outside my_mug's 4 px: taught, mug predicted at (0, 2) (my_mug's spill) and (0, 3-4), the other mug's 4 px
    # true -> 2 / 5; untaught, (0, 3-4) -> 2 / 4. The ball is outside either way: 4 / 6.
    assert t["miou_outside_personal"] == pytest.approx((2 / 5 + 4 / 6) / 2)
    assert u["miou_outside_personal"] == pytest.approx((2 / 4 + 4 / 6) / 2)
    out = compare_runs(untaught.summary(), taught.summary())
    # Teaching raised the plain figure by the better mask of my_mug, and cost the rest the spill at (0, 2).
    assert out["delta_points"] == pytest.approx(100 * (6 / 9 - 4 / 8) / 2)
    assert out["outside_personal"]["delta_points"] == pytest.approx(100 * (2 / 5 - 2 / 4) / 2)
    # Without a personal ground truth there is no "outside".
    blind = OpenVocabScorer()
    blind.add(frame_one(), [], TABLE, None, CLASSES, OBJECTS)
    assert math.isnan(blind.summary()["generic"]["miou_outside_personal"])


def _run(miou: float, per_class: dict[str, float], labelled: int = 5) -> dict:
    return {"labelled_segments": labelled,
            "generic": {"vocabulary": list(per_class), "miou": miou,
                        "per_class": {w: {"iou": v} for w, v in per_class.items()}}}


def test_compare_runs():
    without = _run(0.60, {"mug": 0.70, "ball": 0.50})
    with_personal = _run(0.592, {"mug": 0.684, "ball": 0.50})
    out = compare_runs(without, with_personal)
    assert out["delta_points"] == pytest.approx(-0.8) and out["within_tolerance"]
    assert out["per_class"]["mug"]["delta_points"] == pytest.approx(-1.6)
    assert not compare_runs(without, _run(0.585, {"mug": 0.67, "ball": 0.50}))["within_tolerance"]  # 1.5 points
    with pytest.raises(InvalidInputError, match="labelling was off"):
        compare_runs(without, _run(0.0, {"mug": 0.0, "ball": 0.0}, labelled=0))
    with pytest.raises(InvalidInputError, match="vocabularies"):
        compare_runs(without, _run(0.6, {"mug": 0.6}))
