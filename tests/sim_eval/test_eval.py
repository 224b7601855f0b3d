"""`perovss eval` end to end on small sources, and the recorder's bookkeeping."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from PIL import Image

from perovss_ros.cli import main
from perovss_ros.eval.metrics import iou
from perovss_ros.eval.runner import ConceptMap, EvalRecorder
from perovss_ros.sim.bags import read_frames, write_scene_bag
from perovss_ros.sim.scenes import make_scene

SIZE = (160, 120)


@pytest.fixture(scope="module")
def scene_bag(tmp_path_factory):
    scene = make_scene(seed=3, num_frames=8, size=SIZE, num_objects=1, num_lookalikes=1)
    path = tmp_path_factory.mktemp("bags") / "scene"
    write_scene_bag(scene, path)
    return path


def _metrics(out):
    return json.loads((out / "metrics.json").read_text())


def test_eval_bag_writes_files_and_miou_recomputes(scene_bag, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["eval", str(scene_bag), "--out", str(out), "--backend", "classic", "--seed", "1", "--quiet"]) == 0
    assert "mIoU" in capsys.readouterr().out
    for name in ("metrics.json", "per_frame.json", "report.md", "contact_sheet.png", "plots/concepts.png",
                 "plots/iou_over_time.png", "predictions/index.json"):
        assert (out / name).is_file(), name
    metrics = _metrics(out)
    assert metrics["meta"]["backend"] == "classic" and metrics["speed"]["frames"] == 8
    assert metrics["speed"]["fps"] > 0

    # Recompute mIoU by hand from the written predictions and the bag's own ground truth.
    index = json.loads((out / "predictions/index.json").read_text())[scene_bag.name]
    ids = index["concepts"]["my_mug"]
    ious = []
    inter = union = 0
    for k, frame in enumerate(read_frames(scene_bag, "/camera/image_raw", "/perovss/ground_truth")):
        pred = cv2.imread(str(out / "predictions" / scene_bag.name / f"{k:06d}.png"), cv2.IMREAD_UNCHANGED)
        assert pred.dtype == np.uint16 and pred.shape == frame.mask.shape
        gt = frame.mask == ids["gt_id"]
        if gt.any():
            ious.append(iou(pred == ids["pred_id"], gt))
        inter += int(np.count_nonzero(gt & (pred == ids["pred_id"])))
        union += int(np.count_nonzero(gt | (pred == ids["pred_id"])))
    assert index["frames"] == list(range(8))
    assert metrics["overall"]["miou"] == pytest.approx(np.mean(ious))
    # The bag has category ground truth: IoU^per is the same masks' intersection over union summed over frames.
    ov = metrics["open_vocab"]
    assert ov["personal"]["my_mug"]["iou_per"] == pytest.approx(inter / union if union else 1.0)
    assert ov["generic"]["vocabulary"] == ["mug", "ball", "box", "bottle", "book"]  # clutter is no object word
    assert ov["off_vocabulary"]["clutter"]["gt_pixels"] > 0 and ov["off_vocabulary"]["clutter"]["labelled_pixels"] == 0
    assert ov["labelled_segments"] == 0  # the pipeline publishes no categories yet
    assert (out / "labelled_sheet.png").is_file()
    assert metrics["per_concept"]["my_mug"]["miou"] == pytest.approx(np.mean(ious))
    per_frame = json.loads((out / "per_frame.json").read_text())
    assert len(per_frame) == 8 and {r["concept"] for r in per_frame} == {"my_mug"}
    report = (out / "report.md").read_text()
    assert "my_mug" in report and "contact_sheet.png" in report

    # Same seed, same numbers (speed aside).
    again = tmp_path / "again"
    assert main(["eval", str(scene_bag), "--out", str(again), "--backend", "classic", "--seed", "1", "--quiet",
                 "--no-predictions"]) == 0
    assert _metrics(again)["overall"] == metrics["overall"]
    assert not (again / "predictions").exists()


def test_eval_teach_frames_from_stream(tmp_path, capsys):
    scene = make_scene(seed=8, num_frames=6, size=SIZE, num_objects=1, num_lookalikes=0)
    bag = tmp_path / "bag"
    write_scene_bag(scene, bag, teach_image_topic="", class_mask_topic="")
    out = tmp_path / "out"
    assert main(["eval", str(bag), "--out", str(out), "--backend", "classic", "--quiet"]) == 1
    assert "--teach-frames" in capsys.readouterr().err
    assert main(["eval", str(bag), "--out", str(out), "--backend", "classic", "--quiet",
                 "--teach-frames", "0,3"]) == 0
    metrics = _metrics(out)
    assert metrics["speed"]["frames"] == 4  # the teaching frames are not scored
    assert "open_vocab" not in metrics and not (out / "labelled_sheet.png").exists()  # no category ground truth
    names = {r["concept"] for r in json.loads((out / "per_frame.json").read_text())}
    assert names == {"my_mug"}


def test_eval_perseg_folder(tmp_path):
    root = tmp_path / "perseg"
    for seed, obj in ((1, "dog"), (2, "teapot")):
        scene = make_scene(seed=seed, num_frames=1, size=SIZE, num_objects=1, num_lookalikes=1)
        (root / "Images" / obj).mkdir(parents=True)
        (root / "Annotations" / obj).mkdir(parents=True)
        for k, (rgb, gt) in enumerate(zip(scene.teach_frames, scene.teach_gt, strict=True)):
            cv2.imwrite(str(root / "Images" / obj / f"{k:02d}.jpg"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
            cv2.imwrite(str(root / "Annotations" / obj / f"{k:02d}.png"), (gt > 0).astype(np.uint8) * 255)
    out = tmp_path / "out"
    assert main(["eval", str(root), "--out", str(out), "--backend", "classic", "--quiet"]) == 0
    metrics = _metrics(out)
    assert metrics["meta"]["kind"] == "perseg"
    assert set(metrics["per_concept"]) == {"dog", "teapot"}
    for summary in metrics["per_concept"].values():
        assert summary["frames"] == 2 and summary["frames_present"] == 2  # shots 01 and 02; 00 teaches
        assert 0.0 <= summary["miou"] <= 1.0
    assert metrics["overall"]["miou_mean_over_concepts"] == pytest.approx(
        np.mean([s["miou"] for s in metrics["per_concept"].values()]))


def test_eval_davis_folder(tmp_path):
    root = tmp_path / "davis"
    scene = make_scene(seed=4, num_frames=3, size=SIZE, num_objects=2, num_lookalikes=0)
    jpg = root / "JPEGImages" / "480p" / "toys"
    ann = root / "Annotations" / "480p" / "toys"
    jpg.mkdir(parents=True)
    ann.mkdir(parents=True)
    palette = [0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * (256 * 3 - 9)
    for k, (rgb, gt) in enumerate(zip(scene.frames, scene.gt, strict=True)):
        cv2.imwrite(str(jpg / f"{k:05d}.jpg"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        img = Image.fromarray(gt.astype(np.uint8), mode="P")
        img.putpalette(palette)
        img.save(ann / f"{k:05d}.png")
    out = tmp_path / "out"
    assert main(["eval", str(root), "--out", str(out), "--backend", "classic", "--quiet"]) == 0
    metrics = _metrics(out)
    assert metrics["meta"]["kind"] == "davis"
    assert set(metrics["per_concept"]) == {"toys_1", "toys_2"}
    assert metrics["speed"]["frames"] == 2


def test_eval_bad_source(tmp_path, capsys):
    assert main(["eval", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 1
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["eval", str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == 1
    assert "PerSeg" in capsys.readouterr().err


def test_recorder_scores_and_orders_worst_first(tmp_path):
    rec = EvalRecorder(tmp_path, worst_k=2)
    rgb = np.zeros((20, 20, 3), np.uint8)
    gt = np.zeros((20, 20), np.uint16)
    gt[5:15, 5:15] = 7
    concepts = [ConceptMap("cup", pred_id=1, gt_id=7)]
    predictions = {0: (5, 15), 1: (5, 10), 2: (0, 0), 3: (5, 14)}  # rows of the predicted band
    for k, (r0, r1) in predictions.items():
        pred = np.zeros((20, 20), np.uint16)
        pred[r0:r1, 5:15] = 1
        rec.add("seq", k, rgb, pred, gt, concepts, seconds=0.5)
    rec.add("seq", 4, rgb, np.zeros((20, 20), np.uint16), None, concepts, seconds=0.5)  # no ground truth
    result = rec.result({"source": "hand"})
    assert [r.iou for r in result.records] == pytest.approx([1.0, 0.5, 0.0, 0.9])
    assert result.overall["miou"] == pytest.approx(2.4 / 4)
    assert result.speed["frames"] == 5 and result.speed["fps"] == pytest.approx(2.0)
    assert [t.caption.split(":")[0] for t in result.worst] == ["seq #2", "seq #1"]  # IoU 0.0, then 0.5
    saved = cv2.imread(str(tmp_path / "predictions" / "seq" / "000001.png"), cv2.IMREAD_UNCHANGED)
    assert saved.dtype == np.uint16 and int(saved.sum()) == 50


def test_eval_bag_without_ground_truth(tmp_path, capsys):
    scene = make_scene(seed=9, num_frames=3, size=SIZE, num_objects=1, num_lookalikes=0)
    bag = tmp_path / "bag"
    write_scene_bag(scene, bag, mask_topic="")
    out = tmp_path / "out"
    assert main(["eval", str(bag), "--out", str(out), "--backend", "classic", "--quiet"]) == 0
    assert "nothing scored" in capsys.readouterr().out
    metrics = _metrics(out)
    assert metrics["overall"] == {} and metrics["speed"]["frames"] == 3
    assert len(list((out / "predictions" / "bag").glob("*.png"))) == 3
    assert "nothing was scored" in (out / "report.md").read_text()


def test_evaluate_leaves_existing_concepts_alone(scene_bag):
    from perovss_ros.core import build_pipeline
    from perovss_ros.core.errors import InvalidInputError
    from perovss_ros.eval.runner import evaluate
    from perovss_ros.eval.sources import bag_sequences

    scene = make_scene(seed=3, num_frames=1, size=SIZE, num_objects=1, num_lookalikes=1)
    pipe = build_pipeline({"backend": "classic", "concept_store": ""})
    pipe.teach("my_mug", scene.teach_frames[:1], masks=scene.teach_masks("my_mug")[:1])
    with pytest.raises(InvalidInputError, match="already has concept"):
        evaluate(bag_sequences(scene_bag), pipe, progress=False)
    assert [c.name for c in pipe.concepts()] == ["my_mug"]
    pipe.forget("my_mug")
    pipe.teach("keep_me", scene.teach_frames[:1], masks=scene.teach_masks("my_mug")[:1])
    result = evaluate(bag_sequences(scene_bag), pipe, progress=False, worst_k=0)
    assert [c.name for c in pipe.concepts()] == ["keep_me"]  # the evaluation's own concept is gone again
    assert set(result.per_concept) == {"my_mug"} and result.worst == []


def test_recorder_open_vocab_and_labelled_sheet(tmp_path):
    from perovss_ros.eval.open_vocab import CategoryTable, PredictedSegment
    from perovss_ros.eval.report import write_report

    rec = EvalRecorder(None, worst_k=0, labelled_k=2)
    rgb = np.zeros((20, 20, 3), np.uint8)
    gt = np.zeros((20, 20), np.uint16)
    gt[5:15, 5:15] = 7
    classes = np.where(gt == 7, 1, 0).astype(np.uint16)
    table = CategoryTable(class_names={1: "mug"}, object_categories={7: "mug"})
    concepts = [ConceptMap("cup", pred_id=1, gt_id=7)]
    # Rows of a "cup (mug)" segment per frame: class IoU 1.0, 0.5, 0.0 (nothing); the sheet keeps the two worst.
    for k, rows in enumerate(((5, 15), (5, 10), None)):
        segments = []
        if rows:
            mask = np.zeros((20, 20), bool)
            mask[rows[0]:rows[1], 5:15] = True
            segments = [PredictedSegment("cup", "mug", True, mask)]
        numbers = rec.add_open_vocab("seq", k, rgb, segments, concepts, table, gt, classes, gt)
        assert numbers["category_iou"] == pytest.approx([1.0, 0.5, 0.0][k])
    result = rec.result()
    assert [t.caption.split(":")[0] for t in result.labelled] == ["seq #2", "seq #1"]
    ov = result.open_vocab
    assert ov["personal"]["cup"]["iou_per"] == pytest.approx((100 + 50) / 300)  # summed over the three frames
    right = dict(ov["right_category"])
    other = right.pop("non_personal")  # the only object is cup's own: no non-personal object-frame
    assert right == {"per_class": {"mug": {"object_frames": 3, "right": 2, "fraction": 2 / 3}},
                     "object_frames": 3, "right": 2, "fraction": 2 / 3}
    assert other["object_frames"] == 0 and other["right"] == 0 and np.isnan(other["fraction"])
    paths = write_report(result, tmp_path / "out")
    assert paths["labelled_sheet"].is_file()
    assert json.loads(paths["metrics"].read_text())["open_vocab"]["labelled_segments"] == 2


def test_no_teach_baseline_and_compare_with(scene_bag, tmp_path, capsys):
    without = tmp_path / "without"
    assert main(["eval", str(scene_bag), "--out", str(without), "--backend", "classic", "--quiet",
                 "--no-predictions", "--no-teach"]) == 0
    assert "taught nothing" in capsys.readouterr().out
    baseline = _metrics(without)
    assert baseline["meta"]["no_teach"] and baseline["per_concept"] == {} and baseline["open_vocab"]["frames"] == 8
    with_ = tmp_path / "with"
    assert main(["eval", str(scene_bag), "--out", str(with_), "--backend", "classic", "--quiet", "--no-predictions",
                 "--compare-with", str(without)]) == 1
    assert "labelling was off" in capsys.readouterr().err  # nothing labels yet: the comparison would be vacuous
    assert (with_ / "report.md").is_file()  # the run itself is reported


def test_compare_with_reads_an_earlier_run(tmp_path):
    from perovss_ros.commands.eval import compare_with
    from perovss_ros.eval.open_vocab import CategoryTable, OpenVocabScorer, PersonalTruth, PredictedSegment
    from perovss_ros.eval.report import write_report
    from perovss_ros.eval.runner import EvalResult

    classes = np.zeros((4, 4), np.uint16)
    classes[:, :2] = 1  # 8 mug pixels
    personal = np.zeros((4, 4), np.uint16)
    personal[:, 0] = 1  # the first column's mug is my_mug
    table = CategoryTable({1: "mug"})

    def run(cols: int) -> EvalResult:
        mask = np.zeros((4, 4), bool)
        mask[:, :cols] = True
        scorer = OpenVocabScorer()
        scorer.add([PredictedSegment("mug", "mug", False, mask)], [PersonalTruth("my_mug", 1)], table, personal,
                   classes)
        return EvalResult(meta={}, records=[], per_concept={}, overall={}, speed={}, open_vocab=scorer.summary())

    write_report(run(2), tmp_path / "without")  # mug IoU 8 / 8
    result = run(3)  # mug IoU 8 / 12
    comparison = compare_with(result, str(tmp_path / "without"))
    assert comparison["delta_points"] == pytest.approx(100 * (8 / 12 - 1.0))
    assert not comparison["within_tolerance"] and result.open_vocab["comparison"] is comparison
    # Outside my_mug's column: the other mug's 4 px against 4 predicted (1.0), then against 8 (4 / 8).
    assert comparison["outside_personal"]["miou_without"] == pytest.approx(1.0)
    assert comparison["outside_personal"]["delta_points"] == pytest.approx(100 * (4 / 8 - 1.0))
    paths = write_report(result, tmp_path / "with")
    report = paths["report"].read_text()
    assert "not within" in report
    assert "Outside the personal objects' pixels" in report and "-50.000 points" in report
