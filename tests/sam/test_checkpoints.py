"""Checkpoint handling: missing, truncated, corrupt, hostile and valid files; real weights where present."""

from __future__ import annotations

import dataclasses
import os
import pathlib

import numpy as np
import pytest
import torch

from perovss_ros.core.checkpoints import CHECKPOINTS, sha256_of
from perovss_ros.core.errors import CheckpointError
from perovss_ros.core.sam import build_sam_backend, build_sam_model, sam_checkpoint_available
from perovss_ros.core.sam.guided import guided_decoder_from
from perovss_ros.core.sam.weights import STAMP_SUFFIX, load_official_weights, load_weights
from perovss_ros.core.types import Prompts


def _fake_entry(name: str, path: pathlib.Path) -> dict:
    """A one-entry catalogue whose checksum is that of ``path`` (to get past verification to loading)."""
    base = CHECKPOINTS["sam_vit_b"]
    return {name: dataclasses.replace(base, name=name, filename=path.name, sha256=sha256_of(path),
                                      size_bytes=path.stat().st_size)}


def test_missing_checkpoint_names_file_and_command(tmp_path) -> None:
    with pytest.raises(CheckpointError) as err:
        build_sam_backend({"model": "vit_b", "checkpoint": str(tmp_path)})
    message = str(err.value)
    assert str(tmp_path / "sam_vit_b_01ec64.pth") in message
    assert "perovss models download sam_vit_b" in message
    assert sam_checkpoint_available({"model": "vit_b", "checkpoint": str(tmp_path)}) is False


def test_wrong_size_is_refused_before_hashing(tmp_path) -> None:
    (tmp_path / "sam_vit_b_01ec64.pth").write_bytes(b"partial download")
    assert sam_checkpoint_available({"model": "vit_b", "checkpoint": str(tmp_path)}) is False
    with pytest.raises(CheckpointError, match=r"bytes.*perovss models download sam_vit_b"):
        build_sam_backend({"model": "vit_b", "checkpoint": str(tmp_path)})


def test_wrong_checksum_names_file_and_command(tmp_path) -> None:
    path = tmp_path / "my_vit_l.pth"  # the catalogue does not know vit_l's size, so the hash decides
    path.write_bytes(os.urandom(4096))
    with pytest.raises(CheckpointError) as err:
        build_sam_backend({"model": "vit_l", "checkpoint": str(path)})
    message = str(err.value)
    assert str(path) in message and "SHA-256" in message
    assert "perovss models download sam_vit_l" in message
    assert not (tmp_path / ("my_vit_l.pth" + STAMP_SUFFIX)).exists()


def test_corrupt_file_with_matching_checksum_is_a_clear_error(tmp_path) -> None:
    path = tmp_path / "corrupt.pth"
    path.write_bytes(b"PK\x03\x04 this is not a torch zip archive" * 10)
    with pytest.raises(CheckpointError, match="cannot be loaded safely") as err:
        load_official_weights(build_sam_model("tiny"), "fake", str(path), _fake_entry("fake", path))
    assert str(path) in str(err.value) and "perovss models download fake" in str(err.value)


class _Payload:
    """Unpickling this would create ``marker``: proof that code ran."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


def test_pickled_object_is_refused_and_never_executed(tmp_path) -> None:
    marker = tmp_path / "executed"
    path = tmp_path / "hostile.pth"
    torch.save({"image_encoder.pos_embed": _Payload(marker)}, path)
    with pytest.raises(CheckpointError, match="cannot be loaded safely"):
        load_weights(path)
    assert not marker.exists()


def test_non_state_dict_is_refused(tmp_path) -> None:
    path = tmp_path / "list.pth"
    torch.save([torch.zeros(2)], path)
    with pytest.raises(CheckpointError, match="not a state dict"):
        load_weights(path)


def test_valid_checkpoint_loads_into_guided_modules_and_caches_verification(tmp_path) -> None:
    path = tmp_path / "tiny.pth"
    torch.save(build_sam_model("tiny", seed=0).state_dict(), path)
    catalogue = _fake_entry("tiny_ckpt", path)
    target = build_sam_model("tiny", seed=1)
    target.mask_decoder = guided_decoder_from(target.mask_decoder)
    load_official_weights(target, "tiny_ckpt", str(path), catalogue)
    reference = build_sam_model("tiny", seed=0).state_dict()
    assert all(torch.equal(v, reference[k]) for k, v in target.state_dict().items())
    stamp = tmp_path / ("tiny.pth" + STAMP_SUFFIX)
    assert stamp.exists()
    # Changing the file invalidates the stamp: the new content is hashed again and refused.
    with open(path, "ab") as handle:
        handle.write(b"tampered")
    catalogue["tiny_ckpt"] = dataclasses.replace(catalogue["tiny_ckpt"], size_bytes=None)
    with pytest.raises(CheckpointError, match="SHA-256"):
        load_official_weights(target, "tiny_ckpt", str(path), catalogue)


def test_state_dict_of_another_model_is_refused(tmp_path) -> None:
    path = tmp_path / "other.pth"
    torch.save({"something.else": torch.zeros(3)}, path)
    with pytest.raises(CheckpointError, match="does not fit this model"):
        load_official_weights(build_sam_model("tiny"), "other", str(path), _fake_entry("other", path))


@pytest.mark.parametrize("model", ["mobile", "vit_b", "vit_l", "vit_h"])
def test_official_weights_where_present(model: str) -> None:
    config = {"model": model, "checkpoint": ""}
    if not sam_checkpoint_available(config):
        pytest.skip(f"no official {model} checkpoint here (run `perovss models download sam_{model}`)")
    encoder, decoder = build_sam_backend(config)
    rgb = np.zeros((96, 128, 3), np.uint8)
    rgb[30:70, 40:90] = (200, 30, 30)
    out = decoder.decode(encoder.encode(rgb), rgb, [Prompts(np.array([[64, 50]], np.float32), np.array([1]))])
    assert out.masks.shape == (1, 1, 96, 128)
    assert out.masks[0, 0, 50, 64]  # the clicked red block is in its own mask
