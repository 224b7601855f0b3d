"""The GPU check without a GPU: ``tools/gpu_bench.sh --dry-run`` end to end, ``--device cuda`` skipped visibly,
and the benchmark modules importable on a machine without ROS."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow  # about 40 s on the shared 2-core CPU
def test_gpu_bench_dry_run_writes_both_reports(tmp_path) -> None:
    env = {**os.environ, "PYTHON": sys.executable}
    proc = subprocess.run([str(ROOT / "tools" / "gpu_bench.sh"), "--dry-run", "--out", str(tmp_path)],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "gpu_bench.json").read_text())
    assert report["environment"]["device"] == "cpu"
    rows = {(r["runtime"], r["k"]): r for r in report["results"]}
    assert {("torch-fp32", 1), ("torch-fp32", 4), ("torch-fp16", 1), ("torch-fp16", 4)} <= set(rows)
    for k in (1, 4):
        half = rows[("torch-fp16", k)]
        assert half["precision"] == "bf16"  # the CPU stand-in for fp16
        assert 0.0 <= half["mask_iou_min"] <= half["mask_iou_mean"] <= 1.0
        assert 0.0 < half["embedding_max_abs_diff"] < 1.0  # rounded, not garbage
        assert "mask_iou_min" not in rows[("torch-fp32", k)]  # the baseline
        assert all(rows[key]["fps"] > 0 for key in rows)
    assert sorted(r["k"] for r in report["reference"]) == [1, 4]
    assert report["weights"]["tiny"].startswith("seeded random weights")
    skipped = {s["runtime"]: s["reason"] for s in report["skipped"]}
    if importlib.util.find_spec("tensorrt") is None:
        assert "TensorRT is not installed" in skipped["tensorrt"]
    markdown = (tmp_path / "gpu_bench.md").read_text()
    assert "| tiny | torch-fp16 | bf16 | 4 |" in markdown and "## Official per-object loop" in markdown
    assert "tensorrt" in markdown and "goal (mobile, TensorRT fp16, K=4" in markdown


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present: --device cuda would run")
def test_bench_core_device_cuda_is_skipped_with_the_reason(capsys) -> None:
    from perovss_ros.bench import core_scaling

    parser = argparse.ArgumentParser()
    core_scaling.add_arguments(parser)
    result = core_scaling.run_scaling(parser.parse_args(["--device", "cuda"]))
    assert "no CUDA device" in result["skipped"]
    assert "scaling: skipped: --device cuda, but torch sees no CUDA device" in capsys.readouterr().out


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present: the check would run")
def test_gpu_check_without_cuda_writes_why(tmp_path) -> None:
    from perovss_ros.bench import core_gpu

    assert core_gpu.main(["--out", str(tmp_path)]) == 1
    assert "no CUDA device" in json.loads((tmp_path / "gpu_bench.json").read_text())["skipped_all"]
    assert "**Skipped:**" in (tmp_path / "gpu_bench.md").read_text()


def test_core_and_core_benchmarks_import_without_rclpy() -> None:
    # A fresh interpreter where rclpy cannot be imported at all (a None entry makes import fail), as on a
    # bare GPU machine with only CUDA PyTorch, numpy, OpenCV and segment-anything.
    code = (
        "import sys\n"
        "for name in ('rclpy', 'rclpy.node', 'rcl_interfaces', 'sensor_msgs', 'std_msgs', 'perovss_interfaces'):\n"
        "    sys.modules[name] = None\n"
        "import perovss_ros.core, perovss_ros.core.pipeline, perovss_ros.core.sam, perovss_ros.core.sam.backend\n"
        "import perovss_ros.core.sam.tensorrt_engines, perovss_ros.core.sam.engine_cache\n"
        "import perovss_ros.bench.core, perovss_ros.bench.core_scaling, perovss_ros.bench.core_gpu\n"
        "import argparse\n"
        "parser = argparse.ArgumentParser()\n"
        "perovss_ros.bench.core.add_arguments(parser)\n"
        "args = parser.parse_args(['--part', 'scaling', '--device', 'cuda'])\n"
        "print(args.device, sorted(m for m in sys.modules if m.startswith('rclpy') and sys.modules[m] is not None))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "cuda []"
