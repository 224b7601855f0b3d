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
                              "--scaling-size", "160x120", "--scaling-reference-k", "1"])
    results = core_scaling.run_scaling(args)
    assert set(results["k"]) == {1}
    for row in results["k"].values():
        assert row["fps"] > 0 and row["encode_ms"] > 0 and row["decode_ms"] > 0
    assert results["reference"]["k"] == 1 and results["reference"]["fps"] > 0
    assert math.isfinite(results["speedup_vs_reference"]) and math.isfinite(results["time_ratio_kmax_k1"])
    printed = capsys.readouterr().out
    assert "reference per-object loop, K=1" in printed and "time(K=1) / time(K=1)" in printed
