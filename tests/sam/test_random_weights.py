"""Official SAM architectures on seeded random weights: for benchmarks only, never reachable from a config."""

from __future__ import annotations

import pytest

from perovss_ros.core import build_pipeline
from perovss_ros.core.errors import CheckpointError
from perovss_ros.core.sam import build_sam_backend


def test_vit_b_on_random_weights_is_the_real_architecture_under_its_own_id(tmp_path) -> None:
    encoder, decoder = build_sam_backend({"model": "vit_b", "seed": 3, "checkpoint": str(tmp_path)},
                                         random_weights=True)
    assert encoder.model_id == "sam-vit_b-random-seed3"
    assert encoder.img_size == 1024 and decoder.grid_hw == (64, 64)
    vit = encoder.sam.image_encoder
    assert len(vit.blocks) == 12 and vit.patch_embed.proj.out_channels == 768
    # No config value reaches the flag: without the checkpoint the pipeline (and so the node) refuses
    # instead of running random weights.
    with pytest.raises(CheckpointError, match="perovss models download"):
        build_pipeline({"backend": "sam", "model": "vit_b", "checkpoint": str(tmp_path / "random"),
                        "concept_store": None})
