"""``runtime: onnxruntime`` for the image encoder: the cached exported graph, its key, and ``runtime: auto``."""

from __future__ import annotations

import numpy as np
import onnxruntime
import pytest
import torch

from perovss_ros.core.errors import InvalidInputError
from perovss_ros.core.sam import build_sam_backend, build_sam_model
from perovss_ros.core.sam.backend import resolve_runtime
from perovss_ros.core.sam.graph_cache import cached_encoder, code_fingerprint, encoder_graph_name


@pytest.fixture(scope="module")
def torch_backend():
    return build_sam_backend({"model": "tiny", "seed": 0})


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return np.random.default_rng(4).integers(0, 255, (300, 400, 3), dtype=np.uint8)


def test_onnxruntime_encoder_matches_torch_and_is_cached_once(torch_backend, image, graph_dir) -> None:
    encoder, _ = build_sam_backend({"model": "tiny", "seed": 0, "runtime": "onnxruntime"})
    assert encoder.runtime == "onnxruntime" and torch_backend[0].runtime == "torch"
    got, want = encoder.encode(image), torch_backend[0].encode(image)
    assert got.grid.shape == want.grid.shape == (256, 32, 32)
    assert float((got.grid - want.grid).abs().max()) <= 1e-4
    assert (got.valid_hw, got.image_hw, got.stride) == (want.valid_hw, want.image_hw, want.stride)
    (cached,) = graph_dir.glob("*.onnx")
    assert cached.name.startswith("sam-tiny-seed0.512x512.opset17.")
    assert f".ort{onnxruntime.__version__}." in cached.name
    stamp = cached.stat().st_mtime_ns
    again, _ = build_sam_backend({"model": "tiny", "seed": 0, "runtime": "onnxruntime"})
    assert [p.name for p in graph_dir.glob("*.onnx")] == [cached.name]
    assert cached.stat().st_mtime_ns == stamp  # read from the cache, not exported again
    assert float((again.encode(image).grid - want.grid).abs().max()) <= 1e-4


def test_other_weights_get_their_own_graph(graph_dir) -> None:
    first = cached_encoder(build_sam_model("tiny", 0), "sam-tiny-seed0", graph_dir)
    second = cached_encoder(build_sam_model("tiny", 1), "sam-tiny-seed1", graph_dir)
    assert first.source != second.source
    assert len(list(graph_dir.glob("*.onnx"))) == 2


def test_a_corrupt_cached_graph_is_exported_again(graph_dir) -> None:
    sam = build_sam_model("tiny", 0)
    path = cached_encoder(sam, "sam-tiny-seed0", graph_dir).source
    path.write_bytes(b"not an onnx graph" * 10)
    rebuilt = cached_encoder(sam, "sam-tiny-seed0", graph_dir)
    assert rebuilt.source == path and path.stat().st_size > 1000
    x = torch.randn(1, 3, 512, 512, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        want = sam.image_encoder(x).numpy()
    assert np.abs(rebuilt.run(x.numpy()) - want).max() <= 1e-4


def test_an_unwritable_cache_falls_back_to_memory(tmp_path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("a file where the cache directory should be")
    encoder = cached_encoder(build_sam_model("tiny", 0), "sam-tiny-seed0", blocker / "graphs")
    assert encoder.source == "<in-memory graph>"
    assert encoder.run(np.zeros((1, 3, 512, 512), np.float32)).shape == (1, 256, 32, 32)


def test_cache_key_names_model_shape_and_versions() -> None:
    name = encoder_graph_name("sam-mobile-6dbb9052", 1024, 17, "1.31.1", "2.14.1+cu130", "0123456789ab")
    assert name == "sam-mobile-6dbb9052.1024x1024.opset17.ort1.31.1.torch2.14.1_cu130.code0123456789ab.onnx"
    assert len(code_fingerprint()) == 12


def test_auto_runtime_is_onnxruntime_on_the_cpu_and_torch_on_cuda() -> None:
    assert resolve_runtime("auto", torch.device("cpu")) == "onnxruntime"  # onnxruntime is importable here
    assert resolve_runtime("auto", torch.device("cuda")) == "torch"
    assert resolve_runtime("torch", torch.device("cpu")) == "torch"
    encoder, decoder = build_sam_backend({"model": "tiny", "seed": 0, "runtime": "auto"})
    assert (encoder.runtime, decoder.runtime) == ("onnxruntime", "onnxruntime")
    with pytest.raises(InvalidInputError, match="auto"):
        build_sam_backend({"model": "tiny", "runtime": "openvino"})


def test_an_encoder_too_large_for_one_graph_is_refused_before_exporting(graph_dir) -> None:
    sam = build_sam_model("tiny", 0)
    sam.image_encoder.register_parameter("ballast", torch.nn.Parameter(torch.empty(2**29 + 1, device="meta")))
    with pytest.raises(InvalidInputError, match="runtime 'torch'"):
        cached_encoder(sam, "sam-tiny-seed0", graph_dir)
    assert not list(graph_dir.iterdir())


def test_the_default_config_runs_the_fastest_runtime_here() -> None:
    # On this CPU onnxruntime is installed and faster than torch (README, Runtimes), so the default
    # (runtime: auto) must run both networks there without being asked.
    from perovss_ros.core.config import PipelineConfig
    from perovss_ros.ros.params import BY_NAME

    assert PipelineConfig().runtime == "auto"
    assert BY_NAME["runtime"].default == "auto"
    encoder, decoder = build_sam_backend(PipelineConfig(backend="sam", model="tiny", concept_store=""))
    assert (encoder.runtime, decoder.runtime) == ("onnxruntime", "onnxruntime")


def test_auto_keeps_an_encoder_too_large_for_one_graph_in_torch(monkeypatch, graph_dir) -> None:
    # vit_h's encoder (2.5 GB) cannot be one ONNX graph: auto runs it in torch and the decoder in
    # onnxruntime, instead of refusing the default; runtime onnxruntime asked for is still refused.
    from perovss_ros.core.sam import backend, graph_cache

    monkeypatch.setattr(backend, "encoder_fits_one_graph", lambda sam: False)
    monkeypatch.setattr(graph_cache, "encoder_fits_one_graph", lambda sam: False)
    encoder, decoder = build_sam_backend({"model": "tiny", "seed": 0, "runtime": "auto"})
    assert (encoder.runtime, decoder.runtime) == ("torch", "onnxruntime")
    assert not list(graph_dir.glob("*.onnx"))
    with pytest.raises(InvalidInputError, match="runtime 'torch'"):
        build_sam_backend({"model": "tiny", "seed": 0, "runtime": "onnxruntime"})
