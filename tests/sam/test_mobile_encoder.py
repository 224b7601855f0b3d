"""MobileSAM (``mobile``): our TinyViT against facts recorded from the official definition.

The fixture ``fixtures/mobile_sam_vit_t.json`` was made outside this repository
from MobileSAM's own code (it names the commit and files): the key/shape
manifest of its whole ``Sam`` state dict, its encoder parameter count, and
output samples of its encoder on weights and an input that the rules below
rebuild here (the same rules, written out in the fixture).
"""

from __future__ import annotations

import dataclasses
import json
import pathlib

import numpy as np
import pytest
import torch

from perovss_ros.core.checkpoints import CHECKPOINTS, sha256_of
from perovss_ros.core.errors import CheckpointError
from perovss_ros.core.sam import build_sam_backend, build_sam_model
from perovss_ros.core.sam.guided import guided_decoder_from
from perovss_ros.core.sam.tiny_vit import window_bias_index
from perovss_ros.core.sam.weights import load_official_weights
from perovss_ros.core.types import Prompts

FIXTURE = json.loads((pathlib.Path(__file__).parent / "fixtures" / "mobile_sam_vit_t.json").read_text())


def rule_weights(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The fixture's ``encoder_check.weight_rule``, applied to ``state``'s keys and shapes."""
    gen = torch.Generator().manual_seed(0)
    out = {}
    for key in sorted(state):
        tensor = state[key]
        if not tensor.is_floating_point():
            out[key] = torch.zeros_like(tensor)
            continue
        r = torch.randn(tensor.shape, generator=gen, dtype=torch.float32)
        if key.endswith("running_var"):
            out[key] = 1 + 0.1 * r.abs()
        elif key.endswith("weight") and tensor.ndim == 1:
            out[key] = 1 + 0.1 * r
        else:
            out[key] = 0.05 * r
    return out


@pytest.fixture(scope="module")
def mobile_sam():
    return build_sam_model("mobile", 0)


def test_state_dict_matches_the_official_manifest(mobile_sam) -> None:
    ours = {key: list(value.shape) for key, value in mobile_sam.state_dict().items()}
    assert FIXTURE["tensor_count"] == 439
    assert len(ours) == 439
    assert ours == FIXTURE["state_dict_shapes"]


def test_encoder_has_about_6_1_million_parameters(mobile_sam) -> None:
    count = sum(p.numel() for p in mobile_sam.image_encoder.parameters())
    assert count == FIXTURE["image_encoder_parameters"]
    assert 6.0e6 < count < 6.2e6


def test_window_bias_index_by_hand() -> None:
    index = window_bias_index(2)  # tokens (0,0) (0,1) (1,0) (1,1); column = |dy|*2 + |dx|
    assert index.tolist() == [[0, 1, 2, 3], [1, 0, 3, 2], [2, 3, 0, 1], [3, 2, 1, 0]]


def test_encoder_output_equals_the_official_on_shared_weights(mobile_sam) -> None:
    check = FIXTURE["encoder_check"]
    encoder = mobile_sam.image_encoder
    original = {k: v.clone() for k, v in encoder.state_dict().items()}
    try:
        encoder.load_state_dict(rule_weights(encoder.state_dict()))
        image = torch.randn(1, 3, 1024, 1024, generator=torch.Generator().manual_seed(1))
        with torch.inference_mode():
            out = encoder(image)
    finally:
        encoder.load_state_dict(original)
    assert list(out.shape) == check["output_shape"] == [1, 256, 64, 64]
    index = torch.randint(0, out.numel(), (256,), generator=torch.Generator().manual_seed(2))
    assert index.tolist() == check["sample_indices"]
    torch.testing.assert_close(out.reshape(-1)[index], torch.tensor(check["sample_values"]), atol=1e-5, rtol=0)
    assert abs(float(out.mean()) - check["output_mean"]) < 1e-4
    assert abs(float(out.std()) - check["output_std"]) < 1e-4


def _catalogue_for(path: pathlib.Path) -> dict:
    """A catalogue whose sam_mobile entry accepts ``path`` (its checksum and size), to reach loading."""
    entry = dataclasses.replace(CHECKPOINTS["sam_mobile"], filename=path.name, sha256=sha256_of(path),
                                size_bytes=path.stat().st_size)
    return {"sam_mobile": entry}


def _guided_mobile():
    sam = build_sam_model("mobile", 0)
    sam.mask_decoder = guided_decoder_from(sam.mask_decoder)
    return sam


@pytest.mark.parametrize("change", ["missing", "extra"])
def test_checkpoint_with_a_missing_or_extra_key_names_the_file(tmp_path, change) -> None:
    state = build_sam_model("mobile", 1).state_dict()
    if change == "missing":
        del state["image_encoder.layers.2.blocks.3.attn.attention_biases"]
    else:
        state["image_encoder.layers.3.blocks.2.attn.qkv.weight"] = torch.zeros(3)
    path = tmp_path / "mobile_sam.pt"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="does not fit this model") as err:
        load_official_weights(_guided_mobile(), "sam_mobile", str(path), _catalogue_for(path))
    assert str(path) in str(err.value)


def test_official_layout_checkpoint_loads_into_the_backend_model(tmp_path) -> None:
    source = build_sam_model("mobile", 3)
    path = tmp_path / "mobile_sam.pt"
    torch.save(source.state_dict(), path)
    target = _guided_mobile()
    load_official_weights(target, "sam_mobile", str(path), _catalogue_for(path))
    got = target.state_dict()
    assert all(torch.equal(got[k], v) for k, v in source.state_dict().items())


def test_mobile_without_its_checkpoint_names_file_and_command(tmp_path) -> None:
    with pytest.raises(CheckpointError) as err:
        build_sam_backend({"model": "mobile", "checkpoint": str(tmp_path)})
    assert str(tmp_path / "mobile_sam.pt") in str(err.value)
    assert "perovss models download sam_mobile" in str(err.value)


def test_mobile_backend_segments_end_to_end_with_random_weights() -> None:
    encoder, decoder = build_sam_backend({"model": "mobile", "seed": 0}, random_weights=True)
    assert encoder.model_id == "sam-mobile-random-seed0"
    rgb = np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8)
    features = encoder.encode(rgb)
    assert features.grid.shape == (256, 64, 64)
    assert features.valid_hw == (48, 64)  # 240×320 → 768×1024 in the model frame, 16 px cells
    out = decoder.decode(features, rgb, [Prompts(np.array([[160, 120]], np.float32), np.array([1]), multimask=True)])
    assert out.masks.shape == (1, 3, 240, 320) and out.logits.shape == (1, 3, 256, 256)
