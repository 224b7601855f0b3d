"""The public API on the sam backend (tiny configuration, seeded random weights: behaviour, not quality)."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from perovss_ros.core import build_pipeline

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("perovss_ros.core.sam") is None,
    reason="perovss_ros.core.sam is not importable yet (engineer SAM's backend)",
)


@pytest.mark.slow
def test_sam_tiny_teach_fine_tune_process_and_persist(tmp_path, red_shots):
    images, masks = red_shots
    cfg = {"backend": "sam", "model": "tiny", "concept_store": str(tmp_path), "presence": False}
    pipe = build_pipeline(cfg)
    assert pipe.backend_name == "sam" and pipe.model_id == "sam-tiny-seed0"
    plain = pipe.teach("plain", images[:2], masks[:2])
    tuned = pipe.teach("tuned", images[:1], masks[:1], fine_tune=True)
    assert not plain.concept.fine_tuned and tuned.concept.fine_tuned
    assert 0.0 <= plain.self_iou <= 1.0 and 0.0 <= tuned.self_iou <= 1.0
    weights = pipe._concepts["tuned"].scale_weights
    assert weights.shape == (3,) and float(weights.sum()) == pytest.approx(1.0, abs=1e-4)
    out = pipe.process(images[2])
    assert out.instance_mask.shape == (120, 160) and out.instance_mask.dtype == np.uint16
    # presence off: both concepts are decoded on a frame showing their object, so segments come out
    assert out.segments, "no segment from two concepts decoded without a presence gate"
    assert {s.label for s in out.segments} <= {"plain", "tuned"}
    assert set(out.presence) == {"plain", "tuned"}
    for seg in out.segments:
        assert (out.instance_mask == seg.instance_id).any()
    assert set(np.unique(out.instance_mask)) - {0} == {seg.instance_id for seg in out.segments}
    assert json.loads((tmp_path / "tuned" / "concept.json").read_text())["fine_tuned"] is True
    again = build_pipeline(cfg)
    assert [(c.name, c.fine_tuned) for c in again.concepts()] == [("plain", False), ("tuned", True)]
    assert again.store_warnings == []
