"""Smoke test of the scaling benchmark: it runs end to end and reports every figure (no timing asserted)."""

from __future__ import annotations

import argparse
import math

import pytest

from perovss_ros.bench import core_scaling


@pytest.mark.slow
def test_scaling_benchmark_reports_all_figures(capsys) -> None:
    parser = argparse.ArgumentParser()
    core_scaling.add_arguments(parser)
    # One concept keeps it cheap (teaching dominates); the K sweep is the benchmark's job.
    args = parser.parse_args(["--scaling-ks", "1", "--scaling-frames", "1", "--scaling-warmup", "0",
                              "--scaling-size", "160x120", "--scaling-reference-k", "1", "--scaling-onnx-encoder"])
    results = core_scaling.run_scaling(args)
    onnx = results["onnx_encoder"][1]  # the extra row: the same pipeline with the encoder in onnxruntime
    assert onnx["median_ms"] > 0 and onnx["encode_ms"] > 0 and onnx["decode_ms"] > 0
    assert set(results["k"]) == {1}
    for row in results["k"].values():
        assert row["fps"] > 0 and row["encode_ms"] > 0 and row["decode_ms"] > 0
    assert results["reference"]["k"] == 1 and results["reference"]["fps"] > 0
    assert math.isfinite(results["speedup_vs_reference"]) and math.isfinite(results["time_ratio_kmax_k1"])
    # The default decoder runtime is the config's default, auto: onnxruntime on this CPU.
    assert (results["runtime_asked"], results["runtime"]) == ("auto", "onnxruntime")
    printed = capsys.readouterr().out
    assert "reference per-object loop, K=1" in printed and "time(K=1) / time(K=1)" in printed
    assert "decoder runtime onnxruntime (auto), encoder torch" in printed
    assert "encoder onnxruntime, K=1:" in printed and "vs reference" in printed


def test_scaling_decoder_runtime_defaults_to_auto_resolved_as_the_backend_does() -> None:
    parser = argparse.ArgumentParser()
    core_scaling.add_arguments(parser)
    args = parser.parse_args([])
    assert args.scaling_runtime == "auto"
    assert core_scaling.decoder_runtime(args.scaling_runtime, "cpu") == "onnxruntime"  # onnxruntime installed
    assert core_scaling.decoder_runtime("torch", "cpu") == "torch"
    assert "mobile" in parser.parse_args(["--scaling-model", "mobile"]).scaling_model


@pytest.mark.slow
def test_scaling_benchmark_reports_both_cascade_modes(capsys) -> None:
    parser = argparse.ArgumentParser()
    core_scaling.add_arguments(parser)
    args = parser.parse_args(["--scaling-ks", "2", "--scaling-frames", "2", "--scaling-warmup", "0",
                              "--scaling-size", "160x120", "--scaling-reference-k", "1",
                              "--scaling-breakdown-reps", "1", "--scaling-breakdown-threads", "0"])
    results = core_scaling.run_scaling(args)
    full, adaptive = results["cascade"][2]["full"], results["cascade"][2]["adaptive"]
    # The full cascade decodes 3 prompt sets per concept per frame: 2 concepts -> 6.
    assert full["sets_per_frame"] == 6.0
    assert 4.0 <= adaptive["sets_per_frame"] <= 6.0  # refinement 2 skipped for at most every concept
    assert 0.0 <= adaptive["mask_iou_min"] <= adaptive["mask_iou_mean"] <= 1.0
    assert full["median_ms"] > 0 and adaptive["median_ms"] > 0
    printed = capsys.readouterr().out
    assert "cascade adaptive, K=2" in printed and "masks vs full IoU" in printed
