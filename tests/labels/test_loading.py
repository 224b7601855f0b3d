"""Loading CLIP weights: safetensors and weights-only state dicts, refusals with a clear error."""

from __future__ import annotations

import collections

import pytest
import torch
from safetensors.torch import save_file

from perovss_ros.core.errors import CheckpointError
from perovss_ros.core.labels import build_clip_encoder
from perovss_ros.core.labels.open_clip_encoder import load_state_dict
from tests.labels.tiny import tiny_clip


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_saved_weights_load_into_a_fresh_model(tmp_path, suffix: str) -> None:
    saved, fresh = tiny_clip(seed=1), tiny_clip(seed=2)
    assert not _same_weights(saved, fresh)
    path = tmp_path / f"clip{suffix}"
    state = {k: v.contiguous() for k, v in saved.state_dict().items()}
    if suffix == ".safetensors":
        save_file(state, str(path))
    else:
        torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, path)
    load_state_dict(fresh, path)
    assert _same_weights(saved, fresh)


def test_pickled_objects_are_refused(tmp_path) -> None:
    path = tmp_path / "clip.pt"
    torch.save(collections.Counter(a=1), path)  # not a tensor dict: weights_only refuses to unpickle it
    with pytest.raises(CheckpointError, match=str(path)):
        load_state_dict(tiny_clip(), path)


def test_shape_mismatch_is_a_checkpoint_error(tmp_path) -> None:
    path = tmp_path / "clip.safetensors"
    save_file({"logit_scale": torch.zeros(3)}, str(path))
    with pytest.raises(CheckpointError):
        load_state_dict(tiny_clip(), path)


def test_named_models_need_their_weights(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="needs a checkpoint"):
        build_clip_encoder("ViT-B-16")
    with pytest.raises(CheckpointError, match="does not exist"):
        build_clip_encoder("ViT-B-16", checkpoint=tmp_path / "missing.safetensors")
    with pytest.raises(CheckpointError, match="models build synthetic-clip"):
        build_clip_encoder("synthetic-clip", model_dir=tmp_path)
