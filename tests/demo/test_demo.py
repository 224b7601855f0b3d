"""`perovss demo --quick` runs end to end: real node process, real teach service, bag replayed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

pytestmark = [pytest.mark.ros, pytest.mark.slow]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    from tests.conftest import next_ros_domain_id

    out = tmp_path_factory.mktemp("demo") / "demo_out"
    env = dict(os.environ, ROS_DOMAIN_ID=str(next_ros_domain_id()),
               PEROVSS_MODEL_DIR=str(out.parent / "no_models"))
    proc = subprocess.run([str(Path(sys.executable).with_name("perovss")), "demo", "--quick", "--out", str(out)],
                          capture_output=True, text=True, env=env, timeout=600)
    return proc, out


def test_demo_exits_cleanly_and_writes_everything(demo_run) -> None:
    proc, out = demo_run
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in ("contact_sheet.png", "demo.gif", "metrics.json", "report.md", "per_frame.json"):
        assert (out / name).is_file(), name
    sheet = cv2.imread(str(out / "contact_sheet.png"))
    assert sheet is not None and sheet.shape[0] > 100 and sheet.shape[1] > 100
    # No checkpoint in the model dir: the demo must say it runs the classic backend.
    assert "backend: classic" in proc.stdout
    assert "taught 'my_mug' over ~/teach" in proc.stdout


def test_demo_taught_through_the_node_service(demo_run) -> None:
    _, out = demo_run
    log = (out / "node.log").read_text()
    assert "taught 'my_mug'" in log
    # The node persisted the concept in the demo's own store.
    assert (out / "concepts" / "my_mug").is_dir()


def test_demo_metrics_match_its_own_predictions(demo_run) -> None:
    """The reported mIoU equals IoU recomputed here from the saved predictions and the bag's ground truth."""
    from perovss_ros.sim.bags import read_frames
    from perovss_ros.sim.topics import MASK_TOPIC

    _, out = demo_run
    metrics = json.loads((out / "metrics.json").read_text())
    index = json.loads((out / "predictions" / "index.json").read_text())["demo"]
    pred_id = index["concepts"]["my_mug"]["pred_id"]
    gt_id = index["concepts"]["my_mug"]["gt_id"]
    ious = []
    for i, frame in enumerate(read_frames(out / "scene_bag", mask_topic=MASK_TOPIC)):
        pred = cv2.imread(str(out / "predictions" / "demo" / f"{i:06d}.png"), cv2.IMREAD_UNCHANGED) == pred_id
        gt = frame.mask == gt_id
        if gt.any():
            ious.append(np.logical_and(pred, gt).sum() / np.logical_or(pred, gt).sum())
    reported = metrics["per_concept"]["my_mug"]["miou"]
    assert reported == pytest.approx(float(np.mean(ious)), abs=1e-9)
    # The personal mug is found among its look-alikes on this easy scene.
    assert reported > 0.6


@pytest.fixture(scope="module")
def labelled_demo_run(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    """``perovss demo --quick --labels`` with the model directory the suite builds synthetic-clip in."""
    from tests.conftest import next_ros_domain_id

    out = tmp_path_factory.mktemp("demo_labels") / "demo_out"
    env = dict(os.environ, ROS_DOMAIN_ID=str(next_ros_domain_id()))
    proc = subprocess.run([str(Path(sys.executable).with_name("perovss")), "demo", "--quick", "--labels",
                           "--out", str(out)], capture_output=True, text=True, env=env, timeout=900)
    return proc, out


def test_labelled_demo_names_the_other_objects_and_keeps_my_mug_apart(labelled_demo_run) -> None:
    import re

    proc, out = labelled_demo_run
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "labels: on, synthetic-clip" in proc.stdout
    # Taught with its category word, which the node reports back.
    assert "category 'mug'" in proc.stdout
    published = re.search(r"labels: (\d+) generic segments published over (\d+) frames \((.*)\)", proc.stdout)
    assert published is not None, proc.stdout
    assert int(published.group(1)) > 0
    words = dict(item.rsplit(" ", 1) for item in published.group(3).split(", "))
    # Only vocabulary words are published as generic labels; the personal name never is.
    assert set(words) <= {"mug", "ball", "box", "bottle", "book"}
    assert "my_mug" not in words
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["per_concept"]["my_mug"]["miou"] > 0.6
    assert (out / "demo.gif").is_file()


def test_labelled_view_names_personal_segments_with_their_category() -> None:
    from perovss_ros.core.types import Segment
    from perovss_ros.ros.demo import StreamedFrame, labelled_view

    ids = np.zeros((4, 4), np.uint16)
    ids[0, 0], ids[3, 3] = 1, 32768
    frame = StreamedFrame(0, ids, [Segment("my_mug", 1, 0.9, (0, 0, 1, 1), True, "mug"),
                                   Segment("mug", 32768, 0.5, (3, 3, 4, 4), False, "mug")])
    shown, names = labelled_view(frame, (4, 4))
    assert shown is ids and names == {1: "my_mug (mug)", 32768: "mug"}
    empty, none = labelled_view(StreamedFrame(1, None), (4, 4))
    assert empty.shape == (4, 4) and not empty.any() and none == {}
