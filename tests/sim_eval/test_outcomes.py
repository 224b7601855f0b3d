"""Outcome categories of (frame, object) pairs on hand-made masks; counts, fractions and reports."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from perovss_ros.core.errors import InvalidInputError
from perovss_ros.eval.metrics import (
    OutcomeCounts,
    classify_outcome,
    lookalike_as_mine,
    score_frame,
    summarize,
)
from perovss_ros.eval.report import write_report
from perovss_ros.eval.runner import ConceptMap, EvalRecorder

SHAPE = (60, 60)


def box(x0, y0, x1, y1):
    m = np.zeros(SHAPE, bool)
    m[y0:y1, x0:x1] = True
    return m


# The object: a 10×10 box, 100 pixels.
GT = box(20, 20, 30, 30)
EMPTY = np.zeros(SHAPE, bool)


@pytest.mark.parametrize(("pred", "expected", "why"), [
    (GT, "right", "IoU 1"),
    (box(20, 20, 30, 40), "right", "200 px covering all 100: IoU 100/200 = 0.5 counts"),
    (box(20, 20, 30, 45), "spill", "250 px covering all 100: IoU 0.4, recall 1"),
    (box(20, 20, 30, 25) | box(40, 40, 52, 45), "spill",
     "50 px on it, 60 px off: IoU 50/160 = 0.31, recall exactly 0.5"),
    (box(20, 20, 30, 24), "partial", "40 px all on it: IoU 0.4, recall 0.4, precision 1"),
    (box(20, 26, 30, 36), "wrong_object", "40 of 100 px on it: IoU 40/160, recall 0.4, precision 0.4"),
    (box(40, 40, 50, 50), "wrong_object", "all 100 px elsewhere: IoU 0"),
    (EMPTY, "miss", "nothing predicted while present"),
    (None, "miss", "no segment while present"),
])
def test_outcome_of_a_present_object(pred, expected, why):
    assert classify_outcome(pred, GT) == expected, why


def test_outcome_of_an_absent_object():
    assert classify_outcome(box(0, 0, 5, 5), EMPTY) == "false_alarm"
    assert classify_outcome(None, EMPTY) == "true_absent"
    assert classify_outcome(EMPTY, EMPTY) == "true_absent"


def test_outcome_rejects_bad_masks():
    with pytest.raises(InvalidInputError):
        classify_outcome(np.zeros((5, 5), bool), GT)
    with pytest.raises(InvalidInputError):
        classify_outcome(None, np.zeros((2, 3, 4), bool))


def test_lookalike_as_mine_needs_more_than_half_on_a_lookalike():
    look = box(40, 40, 50, 50)  # 100 px
    assert lookalike_as_mine(look, look)
    assert lookalike_as_mine(box(40, 40, 50, 46) | box(0, 0, 10, 4), look)  # 60 of 100 px
    assert not lookalike_as_mine(box(40, 40, 50, 45) | box(0, 0, 10, 5), look)  # exactly half
    assert not lookalike_as_mine(GT, look)
    assert not lookalike_as_mine(None, look) and not lookalike_as_mine(EMPTY, look)


def test_counts_and_fractions():
    counts = OutcomeCounts()
    for outcome, on_look in [("right", False), ("spill", False), ("wrong_object", True), ("miss", None),
                             ("false_alarm", True), ("true_absent", False), ("true_absent", None)]:
        counts.add(outcome, on_look)
    assert (counts.present, counts.absent) == (4, 3)
    assert (counts.lookalike_as_mine, counts.lookalike_scored) == (2, 5)
    frac = counts.fractions()
    assert frac["right"] == frac["spill"] == frac["wrong_object"] == frac["miss"] == pytest.approx(1 / 4)
    assert frac["partial"] == 0.0
    assert frac["false_alarm"] == pytest.approx(1 / 3) and frac["true_absent"] == pytest.approx(2 / 3)
    assert frac["lookalike_as_mine"] == pytest.approx(2 / 5)
    other = OutcomeCounts(partial=2)
    counts.merge(other)
    assert counts.partial == 2 and counts.present == 6
    assert math.isnan(OutcomeCounts().fractions()["right"])
    with pytest.raises(InvalidInputError):
        counts.add("nearly_right")


def test_summary_carries_outcomes():
    look = box(40, 40, 50, 50)
    scores = [score_frame(GT, GT, look), score_frame(look, GT, look), score_frame(look, EMPTY, look),
              score_frame(EMPTY, EMPTY, look)]
    assert [s.outcome for s in scores] == ["right", "wrong_object", "false_alarm", "true_absent"]
    assert [s.lookalike_as_mine for s in scores] == [False, True, True, False]
    summary = summarize(scores)
    assert summary["outcomes"]["right"] == 1 and summary["outcomes"]["wrong_object"] == 1
    assert summary["outcomes"]["lookalike_as_mine"] == 2
    assert summary["wrong_object_fraction"] == pytest.approx(0.5)  # 1 of 2 present frames
    assert summary["outcome_fractions"]["false_alarm"] == pytest.approx(0.5)
    assert score_frame(GT, GT).lookalike_as_mine is None  # no all-object map: not scored


def test_recorder_reports_outcomes_in_json_markdown_and_captions(tmp_path):
    rgb = np.zeros((*SHAPE, 3), np.uint8)
    gt = np.zeros(SHAPE, np.uint16)
    gt[GT] = 1
    objects = gt.copy()
    objects[box(40, 40, 50, 50)] = 2  # the look-alike of "cup"
    rec = EvalRecorder(tmp_path, save_predictions=False, worst_k=4)
    concepts = [ConceptMap("cup", pred_id=5, gt_id=1, lookalike_ids=(2,))]
    on_look = np.zeros(SHAPE, np.uint16)
    on_look[box(40, 40, 50, 50)] = 5
    on_cup = np.zeros(SHAPE, np.uint16)
    on_cup[GT] = 5
    rec.add("s", 0, rgb, on_cup, gt, concepts, objects=objects)
    rec.add("s", 1, rgb, on_look, gt, concepts, objects=objects)
    result = rec.result()
    assert [r.outcome for r in result.records] == ["right", "wrong_object"]
    captions = [t.caption for t in result.worst]
    assert captions[0] == "s #1: cup 0.00 wrong object (on a look-alike)"
    assert captions[1] == "s #0: cup 1.00 right"
    paths = write_report(result, tmp_path / "out")
    metrics = json.loads(paths["metrics"].read_text())
    assert metrics["overall"]["outcomes"]["wrong_object"] == 1
    assert metrics["per_concept"]["cup"]["outcomes"]["lookalike_as_mine"] == 1
    assert metrics["per_concept"]["cup"]["outcome_fractions"]["right"] == pytest.approx(0.5)
    per_frame = json.loads(paths["per_frame"].read_text())
    assert [r["outcome"] for r in per_frame] == ["right", "wrong_object"]
    report = paths["report"].read_text()
    assert "## Outcomes" in report and "| cup | 1 (50 %) | 0 (0 %) | 1 (50 %) |" in report


def test_eval_of_a_hard_bag_counts_outcomes_and_lookalikes(tmp_path, capsys):
    from perovss_ros.cli import main
    from perovss_ros.eval.sources import bag_sequences
    from perovss_ros.sim.bags import write_scene_bag
    from perovss_ros.sim.scenes import make_scene

    scene = make_scene(seed=950, num_frames=4, size=(160, 120), num_objects=1, difficulty="hard")
    bag = tmp_path / "bag"
    write_scene_bag(scene, bag)
    (seq,) = bag_sequences(bag)
    assert seq.concepts[0].lookalike_ids == (2, 3, 4)
    frames = list(seq.frames())
    assert all(np.array_equal(f.objects, o) for f, o in zip(frames, scene.object_gt, strict=True))

    out = tmp_path / "out"
    assert main(["eval", str(bag), "--out", str(out), "--backend", "classic", "--quiet", "--no-predictions"]) == 0
    assert "outcomes: right" in capsys.readouterr().out
    overall = json.loads((out / "metrics.json").read_text())["overall"]
    counts = overall["outcomes"]
    assert counts["present"] + counts["absent"] == 4 and counts["lookalike_scored"] == 4
    present = int(sum(scene.presence("my_mug")))
    assert counts["present"] == present
    assert "## Outcomes" in (out / "report.md").read_text()
