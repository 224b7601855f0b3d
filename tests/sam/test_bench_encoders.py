"""The encoder benchmark (torch against onnxruntime per frame): what it runs and reports, never how fast."""

from __future__ import annotations

import argparse
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from perovss_ros.bench import core, core_encoders


class _Recorder:
    """A stand-in encoder that logs its calls and returns a fixed grid."""

    def __init__(self, name: str, log: list[str], value: float) -> None:
        self.name, self.log, self.value = name, log, value

    def encode(self, rgb: np.ndarray):
        self.log.append(self.name)
        return SimpleNamespace(grid=torch.full((2, 3, 3), self.value))


def test_compare_runs_the_same_frames_alternating_and_counts_only_timed_ones() -> None:
    log: list[str] = []
    frames = [np.zeros((4, 4, 3), np.uint8)] * 2
    row = core_encoders.compare(_Recorder("torch", log, 1.0), _Recorder("onnxruntime", log, 1.25), frames,
                                warmup=1, count=3)
    # 4 frames, each runtime once per frame; the first of the pair alternates.
    assert log == ["torch", "onnxruntime", "onnxruntime", "torch", "torch", "onnxruntime", "onnxruntime", "torch"]
    assert len(row["torch_times_ms"]) == len(row["onnxruntime_times_ms"]) == 3
    assert row["max_abs_diff"] == pytest.approx(0.25)
    assert row["speedup"] == pytest.approx(row["torch_ms"] / row["onnxruntime_ms"])


def test_bench_core_part_encoders_compares_the_tiny_encoder(graph_dir, capsys) -> None:
    parser = argparse.ArgumentParser()
    core.add_arguments(parser)
    args = parser.parse_args(["--part", "encoders", "--encoder-models", "tiny", "--encoder-frames", "1",
                              "--encoder-warmup", "0", "--encoder-threads", "1", "--encoder-size", "160x120"])
    threads_before = torch.get_num_threads()
    assert core.run(args) == 0
    assert torch.get_num_threads() == threads_before  # restored
    assert len(list(graph_dir.glob("*.onnx"))) == 1  # the encoder graph went to the graph cache
    printed = capsys.readouterr().out
    assert "1 threads (torch and onnxruntime alike)" in printed
    assert "tiny   512x512      1" in printed and "target: onnxruntime >= 1.5x" in printed


def test_encoder_pair_shares_weights_and_agrees(graph_dir) -> None:
    torch_encoder, ort_encoder, weights = core_encoders.encoder_pair("tiny", 0, threads=1)
    assert torch_encoder.sam is ort_encoder.sam
    assert (torch_encoder.runtime, ort_encoder.runtime) == ("torch", "onnxruntime")
    assert ort_encoder.graph.session.get_session_options().intra_op_num_threads == 1
    assert weights.startswith("seeded random weights")
    frame = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    row = core_encoders.compare(torch_encoder, ort_encoder, [frame], warmup=0, count=1)
    assert row["max_abs_diff"] <= 1e-4


def test_pipeline_option_times_every_model_and_encoder_runtime_in_one_loop(graph_dir, capsys) -> None:
    parser = argparse.ArgumentParser()
    core.add_arguments(parser)
    args = parser.parse_args(["--part", "encoders", "--encoder-models", "tiny", "--encoder-frames", "1",
                              "--encoder-warmup", "0", "--encoder-threads", "1", "--encoder-size", "160x120",
                              "--encoder-pipeline-k", "2"])
    results = core_encoders.run_encoders(args)
    pipeline = results["pipeline"]
    assert (pipeline["k"], pipeline["frames"], pipeline["decoder_runtime"]) == (2, 1, "onnxruntime")
    assert set(pipeline["median_ms"]) == {"tiny/torch", "tiny/onnxruntime"}
    assert all(ms > 0 for ms in pipeline["median_ms"].values())
    assert "pipeline per frame, K=2" in capsys.readouterr().out


def test_pipelines_run_k_concepts_with_the_encoder_in_each_runtime(graph_dir) -> None:
    torch_encoder, ort_encoder, _ = core_encoders.encoder_pair("tiny", 0, threads=1)
    scene = core_encoders._scene(2, (160, 120), 0)
    pipes = core_encoders.pipelines(torch_encoder, ort_encoder, scene, 2, threads=1, seed=0)
    assert pipes["torch"].encoder is torch_encoder and pipes["onnxruntime"].encoder is ort_encoder
    for pipe in pipes.values():
        assert len(pipe.concepts()) == 2 and pipe.decoder.runtime == "onnxruntime"
        assert not pipe.config.identity and not pipe.config.presence
        result = pipe.process(scene.frames[0])
        assert result.instance_mask.shape == (120, 160)

