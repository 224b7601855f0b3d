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


def _doctor(tmp_path: Path, **env: str) -> tuple[int, dict[str, dict]]:
    full_env = dict(os.environ, PEROVSS_MODEL_DIR=str(tmp_path / "models"), **env)
    proc = subprocess.run([PEROVSS, "doctor", "--json"], capture_output=True, text=True, env=full_env,
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
