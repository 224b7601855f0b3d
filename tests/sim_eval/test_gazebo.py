"""Gazebo segmentation-camera ground truth: the labels_map byte layout, label tables, and a bag written like
one recorded through ros_gz_bridge (Gazebo itself does not run here).

Byte layout of a bridged ``labels_map`` pixel, from gz-rendering's
``Ogre2SegmentationCamera::LabelMapFromColoredBuffer``: byte 2 = label id,
byte 1 = instance count / 256, byte 0 = instance count % 256; semantic maps
repeat the label in all three bytes. ``ros_gz_bridge`` maps ``RGB_INT8`` to
``rgb8`` and copies the bytes.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from perovss_ros.cli import main
from perovss_ros.core.errors import InvalidInputError
from perovss_ros.eval.gazebo import (
    GazeboTruth,
    PersonalLabel,
    load_label_table,
    pair_counts,
    parse_personal,
    split_labels_map,
)
from perovss_ros.eval.sources import GazeboSource, bag_sequences

TS = get_typestore(Stores.ROS2_KILTED)
H, W = 48, 64
T0 = 1_800_000_000 * 10**9
PERIOD = 100_000_000  # 10 Hz


def _pixel(label: int, instance: int) -> list[int]:
    return [instance % 256, instance // 256, label]


def test_panoptic_bytes():
    pixels = np.array([[_pixel(10, 258), _pixel(0, 0), _pixel(20, 1)]], np.uint8)
    labels, instances = split_labels_map(pixels, "panoptic")
    assert labels.tolist() == [[10, 0, 20]] and instances.tolist() == [[258, 0, 1]]
    assert labels.dtype == instances.dtype == np.uint16


def test_opencv_layout():
    # The same pixel as a saved PNG read by OpenCV (BGR): label in channel 0, count channel 1 * 256 + channel 2.
    pixels = np.array([[[10, 1, 2]]], np.uint8)
    labels, instances = split_labels_map(pixels, "panoptic", "opencv")
    assert labels.tolist() == [[10]] and instances.tolist() == [[258]]
    with pytest.raises(InvalidInputError, match="layout"):
        split_labels_map(pixels, "panoptic", "rgb")


def test_semantic_bytes():
    pixels = np.array([[[7, 7, 7], [0, 0, 0]]], np.uint8)
    labels, instances = split_labels_map(pixels, "semantic")
    assert labels.tolist() == [[7, 0]] and instances is None
    with pytest.raises(InvalidInputError, match="panoptic"):
        split_labels_map(np.array([[_pixel(10, 2)]], np.uint8), "semantic")
    with pytest.raises(InvalidInputError, match="mode"):
        split_labels_map(pixels, "instance_ids")


def test_label_tables(tmp_path):
    path = tmp_path / "labels.yaml"
    path.write_text("labels:\n  10: mug\n  11: mug\n  20: ball\n")
    assert load_label_table(path) == {10: "mug", 11: "mug", 20: "ball"}
    assert load_label_table("{10: mug, 20: ball}") == {10: "mug", 20: "ball"}
    assert load_label_table({"30": "book"}) == {30: "book"}
    for bad, message in (("{0: floor}", "background"), ("{256: mug}", "out of range"), ("{x: mug}", "label id"),
                         ("{10: ''}", "category word"), ("{}", "empty"), ("not-a-file.yaml", "not a file")):
        with pytest.raises(InvalidInputError, match=message):
            load_label_table(bad)


def test_personal_specs():
    assert parse_personal("my_mug=10:2") == PersonalLabel("my_mug", 10, 2)
    assert parse_personal("my_ball=20") == PersonalLabel("my_ball", 20, None)
    for bad in ("my_mug", "my_mug=x", "my_mug=300", "=10"):
        with pytest.raises(InvalidInputError):
            parse_personal(bad)


def test_truth_maps_by_hand():
    # Two mugs of label 10 (instances 1, 2), one mug of label 11, a ball of label 20; mine is 10:2.
    labels = np.array([[10, 10, 11, 20, 0]], np.uint16)
    instances = np.array([[1, 2, 1, 1, 0]], np.uint16)
    pairs = pair_counts([(labels, instances), (labels[:, :2], instances[:, :2])])
    assert pairs == {(10, 1): (2, 2), (10, 2): (2, 2), (11, 1): (1, 1), (20, 1): (1, 1)}  # (frames, pixels)
    truth = GazeboTruth({10: "mug", 11: "mug", 20: "ball"}, [PersonalLabel("my_mug", 10, 2)], "panoptic", pairs)
    personal, objects, classes = truth.maps(labels, instances)
    assert personal.tolist() == [[0, 1, 0, 0, 0]]
    # mine is 1; the others in sorted (label, instance) order: (10, 1) -> 2, (11, 1) -> 3, (20, 1) -> 4.
    assert objects.tolist() == [[2, 1, 3, 4, 0]]
    # Words numbered in order of their smallest label: mug 1, ball 2.
    assert classes.tolist() == [[1, 1, 1, 2, 0]]
    table = truth.categories()
    assert table.class_names == {1: "mug", 2: "ball"}
    assert table.object_categories == {1: "mug", 2: "mug", 3: "mug", 4: "ball"}
    with pytest.raises(InvalidInputError, match="not in the label table"):
        GazeboTruth({20: "ball"}, [PersonalLabel("my_mug", 10, 2)], "panoptic")
    with pytest.raises(InvalidInputError, match="both take label 10"):
        GazeboTruth({10: "mug"}, [PersonalLabel("a", 10, None), PersonalLabel("b", 10, 2)], "panoptic")
    with pytest.raises(InvalidInputError, match="no instances"):
        GazeboTruth({10: "mug"}, [PersonalLabel("a", 10, 2)], "semantic")


def _image(array: np.ndarray, stamp: int):
    h, w = array.shape[:2]
    header = TS.types["std_msgs/msg/Header"](
        stamp=TS.types["builtin_interfaces/msg/Time"](sec=stamp // 10**9, nanosec=stamp % 10**9), frame_id="cam")
    return TS.types["sensor_msgs/msg/Image"](header=header, height=h, width=w, encoding="rgb8", is_bigendian=0,
                                             step=w * 3, data=np.ascontiguousarray(array, np.uint8).ravel())


def _scene(k: int, semantic: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Frame ``k``: camera rgb8 and panoptic labels_map bytes (semantic: the label in all three). My mug
    (10:1) moves right; another mug (10:2) and a ball (20:1) stay; the other mug is hidden in frame 5."""
    rgb = np.full((H, W, 3), 90, np.uint8)
    labels_map = np.zeros((H, W, 3), np.uint8)
    x = 4 + 2 * k
    boxes = [((10, 1), (6, 18, x, x + 12), (200, 40, 40)), ((20, 1), (30, 44, 40, 56), (40, 200, 40))]
    if k != 5:
        boxes.append(((10, 2), (26, 40, 8, 20), (40, 40, 200)))
    for (label, instance), (y0, y1, x0, x1), color in boxes:
        rgb[y0:y1, x0:x1] = color
        labels_map[y0:y1, x0:x1] = [label] * 3 if semantic else _pixel(label, instance)
    return rgb, labels_map


def _gazebo_bag(path, frames: int = 8, semantic: bool = False) -> None:
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        cam = writer.add_connection("/camera/image_raw", "sensor_msgs/msg/Image", typestore=TS)
        seg = writer.add_connection("/panoptic/labels_map", "sensor_msgs/msg/Image", typestore=TS)
        for k in range(frames):
            rgb, labels_map = _scene(k, semantic)
            stamp = T0 + k * PERIOD
            writer.write(cam, stamp, TS.serialize_cdr(_image(rgb, stamp), "sensor_msgs/msg/Image"))
            late = stamp + (2_000_000 if k == 3 else 0)  # within the stamp-matching tolerance
            writer.write(seg, late, TS.serialize_cdr(_image(labels_map, late), "sensor_msgs/msg/Image"))


def test_gazebo_bag_gives_personal_and_category_truth(tmp_path):
    bag = tmp_path / "gz"
    _gazebo_bag(bag)
    source = GazeboSource("/panoptic/labels_map", "panoptic", {10: "mug", 20: "ball"},
                          (PersonalLabel("my_mug", 10, 1),))
    [seq] = bag_sequences(bag, teach_frames=[0, 1], gazebo=source)
    [concept] = seq.concepts
    assert concept.name == "my_mug" and concept.gt_id == 1 and len(concept.shots) == 2
    assert concept.category == "mug"
    # (10, 2) -> 2, (20, 1) -> 3; the other mug is my mug's only same-category look-alike.
    assert concept.lookalike_ids == (2,)
    assert seq.categories.class_names == {1: "mug", 2: "ball"}
    assert seq.categories.object_categories == {1: "mug", 2: "mug", 3: "ball"}
    frames = list(seq.frames())
    assert [f.index for f in frames] == [2, 3, 4, 5, 6, 7]
    for f in frames:
        _, labels_map = _scene(f.index)
        mine = (labels_map[..., 2] == 10) & (labels_map[..., 0] == 1)
        assert np.array_equal(f.gt == 1, mine) and f.gt.max() == 1
        assert np.array_equal(f.objects == 2, (labels_map[..., 2] == 10) & (labels_map[..., 0] == 2))
        assert np.array_equal(f.classes == 1, labels_map[..., 2] == 10)
        assert np.array_equal(f.classes == 2, labels_map[..., 2] == 20)
    with pytest.raises(InvalidInputError, match="teaching topics"):
        bag_sequences(bag, gazebo=source)  # a Gazebo bag has no /perovss/teach topics
    with pytest.raises(InvalidInputError, match="no labels topic"):
        bag_sequences(bag, teach_frames=[0], gazebo=GazeboSource("/nope", "panoptic", {10: "mug"},
                                                                 (PersonalLabel("my_mug", 10, 1),)))


def test_semantic_gazebo_bag(tmp_path):
    bag = tmp_path / "gz"
    _gazebo_bag(bag, frames=4, semantic=True)
    source = GazeboSource("/panoptic/labels_map", "semantic", {10: "mug", 20: "ball"},
                          (PersonalLabel("my_ball", 20),))
    [seq] = bag_sequences(bag, teach_frames=[0], gazebo=source)
    assert [c.name for c in seq.concepts] == ["my_ball"] and seq.concepts[0].lookalike_ids == ()
    for f in seq.frames():
        _, labels_map = _scene(f.index, semantic=True)
        assert np.array_equal(f.gt == 1, labels_map[..., 0] == 20)
        assert f.objects is None  # a semantic map cannot tell the two mugs apart
        assert np.array_equal(f.classes == 1, labels_map[..., 0] == 10)


def test_sim_info_lists_the_pairs(tmp_path, capsys):
    bag = tmp_path / "gz"
    _gazebo_bag(bag, frames=6)
    assert main(["sim", "--info", str(bag), "--gazebo-labels-topic", "/panoptic/labels_map"]) == 0
    printed = capsys.readouterr().out
    assert "3 (label, instance) pair(s)" in printed
    # My mug 12×12 px in all 6 frames; the other mug 14×12 px in 5 (hidden in frame 5); the ball 14×16 px.
    assert "label 10 instance 1: in 6 frame(s), 144 px a frame" in printed
    assert "label 10 instance 2: in 5 frame(s), 168 px a frame" in printed
    assert "label 20 instance 1: in 6 frame(s), 224 px a frame" in printed


def test_perovss_eval_on_a_gazebo_bag(tmp_path, capsys):
    bag = tmp_path / "gz"
    _gazebo_bag(bag)
    out = tmp_path / "eval"
    argv = ["eval", str(bag), "--out", str(out), "--backend", "classic", "--quiet", "--no-predictions",
            "--gazebo-labels-topic", "/panoptic/labels_map", "--label-table", "{10: mug, 20: ball}",
            "--personal", "my_mug=10:1", "--teach-frames", "0,1"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "open vocabulary:" in printed and "labelling off" in printed  # the pipeline does not label yet
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["per_concept"]["my_mug"]["frames"] == 6
    ov = metrics["open_vocab"]
    assert ov["frames"] == 6 and set(ov["personal"]) == {"my_mug"}
    assert ov["generic"]["vocabulary"] == ["mug", "ball"]
    # The other mug is in view in 5 of the 6 scored frames (hidden in frame 5).
    assert ov["lookalike_fp"]["object_frames"] == 5
    # Objects in view: my mug 6, the ball 6, the other mug 5.
    assert ov["right_category"]["object_frames"] == 17
    report = (out / "report.md").read_text()
    assert "## Open vocabulary" in report and "| mug |" in report
    assert (out / "labelled_sheet.png").is_file()

    assert main([*argv[:-2], "--teach-frames", "0", "--gazebo-mode", "semantic"]) == 1
    assert "panoptic" in capsys.readouterr().err  # a panoptic map read as semantic is refused
    assert main(["eval", str(bag), "--out", str(out), "--personal", "my_mug=10"]) == 1
    assert "--gazebo-labels-topic" in capsys.readouterr().err
