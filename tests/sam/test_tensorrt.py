"""TensorRT build and run (needs the tensorrt wheel and a CUDA GPU; skipped visibly elsewhere)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from perovss_ros.core.errors import CheckpointError
from perovss_ros.core.sam import build_sam_backend
from perovss_ros.core.sam.engine_cache import ENGINE_DIR_ENV, list_engines
from perovss_ros.core.types import Prompts

trt = pytest.importorskip("tensorrt", reason="TensorRT is not installed here (tensorrt wheel or JetPack)")
if not torch.cuda.is_available():
    pytest.skip("TensorRT engines need a CUDA device", allow_module_level=True)


@pytest.fixture
def engine_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(ENGINE_DIR_ENV, str(tmp_path))
    return tmp_path


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def test_tiny_engines_build_cache_and_match_torch(engine_dir) -> None:
    config = {"model": "tiny", "seed": 0, "device": "cuda"}
    encoder, decoder = build_sam_backend({**config, "runtime": "tensorrt"})
    assert encoder.runtime == "tensorrt" and decoder.runtime == "tensorrt"
    names = sorted(path.name.split(".")[1] for path, record in list_engines(engine_dir) if record)
    assert names == ["decoder", "encoder"]
    torch_encoder, torch_decoder = build_sam_backend({**config, "runtime": "torch"})
    rgb = np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    # 10 sets: more than the engine's profile (K up to 8) holds, so they also run in two chunks.
    prompts = [Prompts(np.array([[20.0 + 28 * k, 100.0]], np.float32), np.array([1])) for k in range(10)]
    ours = decoder.decode(encoder.encode(rgb), rgb, prompts)
    want = torch_decoder.decode(torch_encoder.encode(rgb), rgb, prompts)
    # fp16 engines against the fp32 torch path: masks, not bits.
    for k in range(10):
        assert _iou(ours.masks[k, 0], want.masks[k, 0]) >= 0.9
    # The second build reads the cached engines instead of building them again.
    before = {path: path.stat().st_mtime_ns for path, _ in list_engines(engine_dir)}
    build_sam_backend({**config, "runtime": "tensorrt"})
    assert {path: path.stat().st_mtime_ns for path, _ in list_engines(engine_dir)} == before


def test_engine_tensorrt_cannot_load_names_the_rebuild(engine_dir) -> None:
    from perovss_ros.core.sam.tensorrt_runtime import TensorRtDecoder

    with pytest.raises(CheckpointError, match="perovss engines build --model tiny"):
        TensorRtDecoder(b"\0" * 64, "garbage.engine", "perovss engines build --model tiny --precision fp16")


def test_auto_picks_tensorrt_on_cuda() -> None:
    from perovss_ros.core.sam.backend import resolve_runtime

    assert resolve_runtime("auto", torch.device("cuda")) == "tensorrt"
