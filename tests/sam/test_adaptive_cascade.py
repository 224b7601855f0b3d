"""The adaptive cascade: refinement 2 skipped only for tracked concepts whose refined mask agrees with the track."""

from __future__ import annotations

import numpy as np
import pytest

from perovss_ros.core.cascade import CascadeRequest, box_iou, run_cascade
from perovss_ros.core.classic import ClassicEncoder, GrabCutDecoder
from perovss_ros.core.config import PipelineConfig
from perovss_ros.core.errors import InvalidInputError
from perovss_ros.core.matching import tight_box
from perovss_ros.core.sam import build_sam_backend
from perovss_ros.core.types import Prompts
from tests.core.images import RED, background, put_square


class Recording:
    """Wraps a real decoder and keeps the prompt sets of every call."""

    def __init__(self, decoder):
        self.decoder = decoder
        self.supports_guidance = decoder.supports_guidance
        self.provides_logits = getattr(decoder, "provides_logits", True)
        self.calls: list[list[Prompts]] = []

    def decode(self, features, rgb, prompts, guidance=None):
        self.calls.append(list(prompts))
        return self.decoder.decode(features, rgb, prompts, guidance)


def _request(track_box=None) -> CascadeRequest:
    points = np.array([[68, 58], [3, 3]], np.float32)
    return CascadeRequest(prompts=Prompts(points=points, labels=np.array([1, 0])), track_box=track_box)


@pytest.fixture(scope="module")
def square():
    img, _ = put_square(background(), 50, 40, 36, RED)
    return img, ClassicEncoder().encode(img)


def test_box_iou_by_hand() -> None:
    assert box_iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert box_iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert box_iou((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0
    assert box_iou((0, 0, 0, 10), (0, 0, 0, 10)) == 0.0  # empty boxes never agree


def test_tracked_agreeing_concept_skips_refinement_2(square) -> None:
    img, feats = square
    full = Recording(GrabCutDecoder())
    run_cascade(full, feats, img, [_request()])
    first_mask = full.decoder.decode(feats, img, [full.calls[0][0]]).masks[0, 0]
    agreeing = tight_box(first_mask)
    adaptive = Recording(GrabCutDecoder())
    result = run_cascade(adaptive, feats, img, [_request(agreeing)], mode="adaptive")
    # Classic has no logits, so full makes 2 calls (first decode, refinement 2) and adaptive 1.
    assert len(full.calls) == 2 and len(adaptive.calls) == 1
    np.testing.assert_array_equal(result.masks[0], first_mask)


def test_adaptive_keeps_refinement_2_for_disagreeing_and_untracked(square) -> None:
    img, feats = square
    full = Recording(GrabCutDecoder())
    want = run_cascade(full, feats, img, [_request(), _request()])
    elsewhere = (100.0, 100.0, 140.0, 140.0)  # no overlap with the square at (50..86, 40..76)
    adaptive = Recording(GrabCutDecoder())
    got = run_cascade(adaptive, feats, img, [_request(elsewhere), _request(None)], mode="adaptive")
    assert [len(c) for c in adaptive.calls] == [len(c) for c in full.calls] == [2, 2]
    np.testing.assert_array_equal(got.masks, want.masks)


def test_sam_refinement_2_decodes_only_the_rows_that_need_it() -> None:
    encoder, decoder = build_sam_backend({"model": "tiny", "seed": 0, "runtime": "torch"})
    img, _ = put_square(background(), 50, 40, 36, RED)
    feats = encoder.encode(img)
    probe = Recording(decoder)
    full = run_cascade(probe, feats, img, [_request(), _request()])
    assert [len(c) for c in probe.calls] == [2, 2, 2]
    # The refinement-1 mask's box, as a track that agrees with it, for row 0 only.
    refined1 = decoder.decode(feats, img, [probe.calls[1][0]]).masks[0]
    best = int(np.argmax(decoder.decode(feats, img, [probe.calls[1][0]]).scores[0]))
    box = tight_box(refined1[best])
    if box is None:
        pytest.skip("the seeded tiny SAM gave an empty refinement-1 mask for this prompt")
    adaptive = Recording(decoder)
    got = run_cascade(adaptive, feats, img, [_request(box), _request()], mode="adaptive")
    assert [len(c) for c in adaptive.calls] == [2, 2, 1]
    np.testing.assert_array_equal(got.masks[0], refined1[best])
    np.testing.assert_array_equal(got.masks[1], full.masks[1])


def test_unknown_mode_and_config_key() -> None:
    img = background()
    with pytest.raises(InvalidInputError, match="cascade mode"):
        run_cascade(GrabCutDecoder(), ClassicEncoder().encode(img), img, [_request()], mode="half")
    assert PipelineConfig.coerce({"cascade": "adaptive"}).cascade == "adaptive"
    assert PipelineConfig().cascade == "full"
    with pytest.raises(InvalidInputError, match="cascade"):
        PipelineConfig.coerce({"cascade": "fast"})
