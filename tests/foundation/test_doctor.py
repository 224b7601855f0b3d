"""`perovss doctor` runs and every line it prints is true on this machine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# The console script of the interpreter running the tests (the venv), whatever PATH says.
PEROVSS = str(Path(sys.executable).with_name("perovss"))


def _doctor(tmp_path: Path, *args: str, **env: str) -> tuple[int, dict[str, dict]]:
    full_env = {**os.environ, "PEROVSS_MODEL_DIR": str(tmp_path / "models"), **env}
    proc = subprocess.run([PEROVSS, "doctor", "--json", *args], capture_output=True, text=True, env=full_env,
                          timeout=120)
    checks = {c["topic"]: c for c in json.loads(proc.stdout)}
    return proc.returncode, checks


@pytest.fixture(scope="module")
def sam_vit_b_filename() -> str:
    from perovss_ros.core.checkpoints import CHECKPOINTS

    return CHECKPOINTS["sam_vit_b"].filename


def test_doctor_reports_this_machine(tmp_path: Path) -> None:
    import torch

    code, checks = _doctor(tmp_path)
    assert checks["torch"]["value"].startswith(torch.__version__)
    expect_device = "cuda" if torch.cuda.is_available() else "cpu only"
    assert checks["device"]["value"].startswith(expect_device)
    assert checks["rclpy"]["ok"] and "RMW rmw_" in checks["rclpy"]["value"]
    assert checks["perovss_interfaces"]["ok"]
    assert checks["model directory"]["value"] == str(tmp_path / "models")
    node_store = str(Path.home() / ".local" / "share" / "perovss" / "concepts")
    assert checks["concept store"]["value"].startswith(f"{node_store} (the node's default")
    try:
        import tensorrt  # noqa: F401
        has_trt = True
    except ImportError:
        has_trt = False
    assert checks["TensorRT"]["value"].startswith("not installed") != has_trt
    assert code == 0, [c for c in checks.values() if not c["ok"]]


def test_doctor_finds_checkpoints_and_picks_backend(tmp_path: Path, sam_vit_b_filename: str) -> None:
    _, before = _doctor(tmp_path)
    assert before["checkpoint sam_vit_b"]["value"].startswith("missing")
    assert before["backend that will run"]["value"].startswith("classic")
    models = tmp_path / "models"
    models.mkdir()
    (models / sam_vit_b_filename).write_bytes(b"placeholder")  # 11 bytes: no ViT-B checkpoint
    code, after = _doctor(tmp_path)
    line = after["checkpoint sam_vit_b"]
    assert line["value"].startswith(f"{models / sam_vit_b_filename} has 11 bytes") and not line["ok"]
    assert "perovss models download sam_vit_b" in line["value"]
    assert "vit_b" not in after["backends that can run"]["value"]
    assert after["backend that will run"]["value"].startswith("classic")
    assert code == 1


@pytest.mark.slow
def test_doctor_says_which_clip_labels_or_why_labelling_is_off(tmp_path: Path) -> None:
    from perovss_ros.core.labels import synthetic_clip

    _, off = _doctor(tmp_path)
    assert off["labels"]["value"].startswith("off (config labels false)") and off["labels"]["ok"]
    assert "not built" in off["labels"]["value"]              # the empty model directory has no synthetic-clip
    config = tmp_path / "labels.yaml"
    config.write_text("backend: classic\nlabels: true\nvocabulary: [mug, ball]\n")
    _, missing = _doctor(tmp_path, "--config", str(config))
    assert not missing["labels"]["ok"] and "perovss models build synthetic-clip" in missing["labels"]["value"]
    built = synthetic_clip.build()  # the standard recipe, cached in the user's model directory
    _, loaded = _doctor(tmp_path, "--config", str(config), PEROVSS_MODEL_DIR=str(built.parent))
    key = synthetic_clip.DEFAULT_RECIPE.key()
    assert loaded["labels"]["ok"]
    assert loaded["labels"]["value"] == f"on: CLIP synthetic-clip:{key} loaded; vocabulary mug, ball"


@pytest.mark.ros
def test_doctor_topic_tells_frames_lost_before_arrival(tmp_path: Path, ros_domain_id: int) -> None:
    """A 10 Hz camera of which only 2 frames in 5 are sent (stamps advance for all)."""
    import threading
    import time

    import numpy as np
    from std_msgs.msg import Header

    from perovss_ros.ros.image_conversion import rgb_to_image
    from tests.ros.helpers import RosHarness, reliable

    ros = RosHarness(ros_domain_id, name="lossy_camera")
    stop = threading.Event()

    def camera() -> None:
        from sensor_msgs.msg import Image

        pub = ros.node.create_publisher(Image, "/lossy_cam", reliable(1))
        frame = np.zeros((120, 160, 3), np.uint8)
        i = 0
        while not stop.is_set():
            if i % 5 in (0, 1):
                msg = rgb_to_image(frame, Header(frame_id="cam"))
                msg.header.stamp.sec, msg.header.stamp.nanosec = 1000 + i // 10, (i % 10) * 100_000_000
                pub.publish(msg)
            i += 1
            time.sleep(0.1)

    threading.Thread(target=camera, daemon=True).start()
    try:
        code, checks = _doctor(tmp_path, "--topic", "/lossy_cam", "--seconds", "4",
                               ROS_DOMAIN_ID=str(ros_domain_id))
    finally:
        stop.set()
        ros.close()
    line = checks["frames on /lossy_cam"]
    assert not line["ok"] and code == 1
    assert "lost before they reach perovss" in line["value"] and "about 10.0 Hz" in line["value"]
    assert "fastdds_large_images.xml" in line["value"] and "reliability:=reliable" in line["value"]
