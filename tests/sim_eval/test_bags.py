"""Scene bags: written by `perovss sim`, read back identical; foreign bags (other encodings) readable."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from perovss_ros.cli import main
from perovss_ros.core.errors import InvalidInputError
from perovss_ros.sim.bags import (
    DEFAULT_START_NS,
    bag_scene_info,
    bag_topics,
    find_image_topic,
    read_frames,
    read_images,
    read_masks,
    read_teach,
)
from perovss_ros.sim.scenes import make_scene

TS = get_typestore(Stores.ROS2_KILTED)


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_sim_bag_reads_back_identical(tmp_path, storage, capsys):
    out = tmp_path / "bag"
    argv = ["sim", "--out", str(out), "--frames", "6", "--width", "96", "--height", "72", "--seed", "4",
            "--objects", "2", "--lookalikes", "1", "--fps", "20", "--storage", storage]
    assert main(argv) == 0
    assert "my_mug" in capsys.readouterr().out
    scene = make_scene(seed=4, num_frames=6, size=(96, 72), num_objects=2, num_lookalikes=1, fps=20)

    image_type = "sensor_msgs/msg/Image"
    assert bag_topics(out) == {"/camera/image_raw": (image_type, 6), "/perovss/ground_truth": (image_type, 6),
                               "/perovss/object_ground_truth": (image_type, 6),
                               "/perovss/class_ground_truth": (image_type, 6),
                               "/perovss/teach/image": (image_type, 3), "/perovss/teach/mask": (image_type, 3)}
    frames = list(read_frames(out, "/camera/image_raw", "/perovss/ground_truth"))
    assert [f.stamp_ns for f in frames] == [DEFAULT_START_NS + i * 50_000_000 for i in range(6)]
    for frame, rgb, gt in zip(frames, scene.frames, scene.gt, strict=True):
        assert frame.rgb.dtype == np.uint8 and np.array_equal(frame.rgb, rgb)
        assert frame.mask.dtype == np.uint16 and np.array_equal(frame.mask, gt)
    teach = read_teach(out)
    assert len(teach) == 3
    assert all(t.stamp_ns < DEFAULT_START_NS for t in teach)
    for t, rgb, gt in zip(teach, scene.teach_frames, scene.teach_gt, strict=True):
        assert np.array_equal(t.rgb, rgb) and np.array_equal(t.mask, gt)
    info = bag_scene_info(out)
    assert info["objects"] == {"1": "my_mug", "2": scene.objects[1].name} and info["seed"] == 4

    # The all-object ground truth and its id table: 2 personal objects (ids 1, 2) and the look-alike (id 3).
    with_objects = list(read_frames(out, "/camera/image_raw", "/perovss/ground_truth",
                                    object_mask_topic="/perovss/object_ground_truth"))
    for frame, objects in zip(with_objects, scene.object_gt, strict=True):
        assert frame.objects.dtype == np.uint16 and np.array_equal(frame.objects, objects)
    look = scene.lookalikes[0]
    assert info["difficulty"] == "easy" and set(info["object_ids"]) == {"1", "2", "3"}
    assert info["object_ids"]["3"] == {"name": look.name, "kind": look.kind, "mimics": look.mimics,
                                       "shape": look.shape, "pattern": look.pattern, "color": list(look.color)}
    assert info["object_ids"]["1"]["shape"] == "mug" and info["object_ids"]["1"]["kind"] == "personal"

    # The category ground truth and its class table (the same table in every scene).
    assert info["classes"] == {"1": "mug", "2": "ball", "3": "box", "4": "bottle", "5": "book", "6": "clutter"}
    with_classes = list(read_frames(out, "/camera/image_raw", class_mask_topic="/perovss/class_ground_truth"))
    for frame, classes in zip(with_classes, scene.class_gt, strict=True):
        assert frame.classes.dtype == np.uint16 and np.array_equal(frame.classes, classes)
        assert frame.mask is None and frame.objects is None

    # Metadata the way ros2 bag reads it: storage plugin and message counts.
    meta = (out / "metadata.yaml").read_text()
    assert f"storage_identifier: {storage}" in meta

    assert main(["sim", "--info", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "6 frame(s) with a mask" in printed and "6 clutter" in printed


def test_custom_topics_and_no_masks(tmp_path):
    out = tmp_path / "bag"
    assert main(["sim", "--out", str(out), "--frames", "3", "--width", "64", "--height", "48",
                 "--image-topic", "/robot/cam/image", "--mask-topic", "", "--teach-image-topic", ""]) == 0
    assert list(bag_topics(out)) == ["/robot/cam/image"]
    assert find_image_topic(out) == "/robot/cam/image"
    assert all(f.mask is None for f in read_frames(out))


def _header(stamp):
    return TS.types["std_msgs/msg/Header"](
        stamp=TS.types["builtin_interfaces/msg/Time"](sec=stamp // 10**9, nanosec=stamp % 10**9), frame_id="cam")


def _raw(encoding, pixels, stamp, step_pad=0, bigendian=0):
    h, w = pixels.shape[:2]
    rows = pixels.reshape(h, -1).view(np.uint8)
    if step_pad:
        rows = np.concatenate([rows, np.full((h, step_pad), 7, np.uint8)], axis=1)
    return TS.types["sensor_msgs/msg/Image"](header=_header(stamp), height=h, width=w, encoding=encoding,
                                             is_bigendian=bigendian, step=rows.shape[1],
                                             data=np.ascontiguousarray(rows).ravel())


def _compressed(fmt, array, stamp):
    ok, buf = cv2.imencode("." + fmt, array)
    assert ok
    return TS.types["sensor_msgs/msg/CompressedImage"](header=_header(stamp), format=fmt, data=buf.ravel())


def test_foreign_bag_encodings_and_mask_matching(tmp_path):
    """A bag like a Gazebo recording: other encodings, padded rows, compressed frames, masks 1 ms late."""
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    gray = rng.integers(0, 256, (6, 5), dtype=np.uint8)
    ids = rng.integers(0, 3, (6, 5)).astype(np.uint16)
    t0 = 10**18
    images = [
        _raw("bgr8", bgr, t0, step_pad=3),
        _raw("rgba8", np.dstack([rgb, np.full((6, 5), 255, np.uint8)]), t0 + 10**8),
        _raw("bgra8", np.dstack([bgr, np.zeros((6, 5), np.uint8)]), t0 + 2 * 10**8),
        _raw("mono8", gray, t0 + 3 * 10**8, step_pad=1),
        _compressed("png", bgr, t0 + 4 * 10**8),
    ]
    masks = [
        _raw("mono8", ids.astype(np.uint8), t0 + 1_000_000),
        _raw("16UC1", ids.astype(">u2"), t0 + 10**8, bigendian=1),
        _compressed("png", ids, t0 + 4 * 10**8),
    ]
    path = tmp_path / "gazebo"
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        cam = writer.add_connection("/gz/camera", "sensor_msgs/msg/Image", typestore=TS)
        cam_c = writer.add_connection("/gz/camera", "sensor_msgs/msg/CompressedImage", typestore=TS)
        seg = writer.add_connection("/gz/segmentation", "sensor_msgs/msg/Image", typestore=TS)
        seg_c = writer.add_connection("/gz/segmentation", "sensor_msgs/msg/CompressedImage", typestore=TS)
        for msg in images:
            conn, kind = (cam_c, "CompressedImage") if hasattr(msg, "format") else (cam, "Image")
            stamp = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
            writer.write(conn, stamp, TS.serialize_cdr(msg, f"sensor_msgs/msg/{kind}"))
        for msg in masks:
            conn, kind = (seg_c, "CompressedImage") if hasattr(msg, "format") else (seg, "Image")
            stamp = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
            writer.write(conn, stamp, TS.serialize_cdr(msg, f"sensor_msgs/msg/{kind}"))

    with pytest.raises(InvalidInputError, match="image topic"):
        find_image_topic(path)  # two image topics and neither is /camera/image_raw
    assert find_image_topic(path, exclude=["/gz/segmentation"]) == "/gz/camera"
    frames = list(read_frames(path, "/gz/camera", "/gz/segmentation"))
    assert [f.stamp_ns for f in frames] == [t0 + k * 10**8 for k in range(5)]
    for k in (0, 1, 2, 4):
        assert np.array_equal(frames[k].rgb, rgb), k
    assert np.array_equal(frames[3].rgb, np.dstack([gray] * 3))
    assert np.array_equal(frames[0].mask, ids)  # 1 ms late: within the matching tolerance
    assert np.array_equal(frames[1].mask, ids)  # big-endian 16UC1
    assert frames[2].mask is None and frames[3].mask is None
    assert np.array_equal(frames[4].mask, ids)
    assert [m.dtype for _, m in read_masks(path, "/gz/segmentation")] == [np.uint16] * 3
    assert read_teach(path) == []


def test_bad_bags_and_topics(tmp_path, capsys):
    with pytest.raises(InvalidInputError, match="does not exist"):
        list(read_images(tmp_path / "missing"))
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "metadata.yaml").write_text("not: [a bag")
    with pytest.raises(InvalidInputError, match="cannot read bag"):
        bag_topics(tmp_path / "junk")
    out = tmp_path / "bag"
    assert main(["sim", "--out", str(out), "--frames", "2", "--width", "64", "--height", "48"]) == 0
    with pytest.raises(InvalidInputError, match="no topic /nope"):
        list(read_images(out, "/nope"))
    capsys.readouterr()
    assert main(["sim", "--out", str(out), "--frames", "2"]) == 1  # never overwrites
    assert "exists already" in capsys.readouterr().err
    assert main(["sim", "--out", str(tmp_path / "b2"), "--objects", "0"]) == 1
    assert not (tmp_path / "b2").exists()


def test_decode_rejects_bad_messages():
    from types import SimpleNamespace

    from perovss_ros.image_messages import decode_image, decode_mask

    def msg(encoding="rgb8", h=2, w=3, step=9, data=bytes(18)):
        return SimpleNamespace(height=h, width=w, encoding=encoding, is_bigendian=0, step=step, data=data)

    assert decode_image(msg()).shape == (2, 3, 3)
    with pytest.raises(InvalidInputError, match="unsupported image encoding 'yuv422'"):
        decode_image(msg("yuv422"))
    with pytest.raises(InvalidInputError, match="step 5"):
        decode_image(msg(step=5))
    with pytest.raises(InvalidInputError, match="needs 18"):
        decode_image(msg(data=bytes(10)))
    with pytest.raises(InvalidInputError, match="must not be empty"):
        decode_image(msg(h=0))
    with pytest.raises(InvalidInputError, match="unsupported mask encoding 'rgb8'"):
        decode_mask(msg())
    with pytest.raises(InvalidInputError, match="corrupt"):
        decode_image(SimpleNamespace(format="png", data=b"not a png"))
    with pytest.raises(InvalidInputError, match="compressed format"):
        decode_image(SimpleNamespace(format="tiff", data=b"x"))
