"""The decode cascade (PerSAM steps 5-7, PerSAM-F first step) on real decoders, prompts recorded."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from perovss_ros.core.cascade import CascadeRequest, run_cascade
from perovss_ros.core.classic import ClassicEncoder, GrabCutDecoder
from perovss_ros.core.matching import tight_box
from perovss_ros.core.types import Prompts
from tests.core.images import RED, background, put_square

HAS_SAM = importlib.util.find_spec("perovss_ros.core.sam") is not None


class Recording:
    """Wraps a real decoder and keeps every call's prompts and output."""

    def __init__(self, decoder):
        self.decoder = decoder
        self.supports_guidance = decoder.supports_guidance
        self.provides_logits = getattr(decoder, "provides_logits", True)
        self.calls = []

    def decode(self, features, rgb, prompts, guidance=None):
        out = self.decoder.decode(features, rgb, prompts, guidance)
        self.calls.append((prompts, guidance, out))
        return out


@pytest.fixture(scope="module")
def square():
    return put_square(background(), 50, 40, 36, RED)


@pytest.fixture(scope="module")
def sam_backend():
    if not HAS_SAM:
        pytest.skip("perovss_ros.core.sam is not importable yet (engineer SAM's backend)")
    from perovss_ros.core.config import PipelineConfig
    from perovss_ros.core.sam import build_sam_backend

    return build_sam_backend(PipelineConfig(backend="sam", model="tiny", concept_store=""))


def _requests():
    points = np.array([[68, 58], [3, 3]], np.float32)
    return [CascadeRequest(prompts=Prompts(points=points, labels=np.array([1, 0])))]


def test_classic_cascade_skips_logit_refinement_and_adds_tight_box(square):
    img, _ = square
    dec = Recording(GrabCutDecoder())
    result = run_cascade(dec, ClassicEncoder().encode(img), img, _requests())
    assert len(dec.calls) == 2  # no logits: refinement 1 would repeat the first decode
    first, _, first_out = dec.calls[0]
    assert first[0].multimask is False and first[0].mask_logits is None and first[0].box is None
    second = dec.calls[1][0][0]
    assert second.multimask is True
    assert second.box == tight_box(first_out.masks[0, 0])
    assert np.array_equal(second.points, first[0].points)
    assert result.masks.shape == (1, 120, 160)


def test_sam_cascade_feeds_logits_and_box_forward(square, sam_backend):
    img, _ = square
    encoder, decoder = sam_backend
    dec = Recording(decoder)
    with torch.no_grad():
        result = run_cascade(dec, encoder.encode(img), img, _requests())
    assert len(dec.calls) == 3
    (p1, _, o1), (p2, _, o2), (p3, _, o3) = dec.calls
    assert p1[0].multimask is False
    assert p2[0].multimask is True and torch.equal(p2[0].mask_logits, o1.logits[0, :1])
    best = int(np.argmax(o2.scores[0]))
    assert torch.equal(p3[0].mask_logits[0], o2.logits[0, best])
    assert p3[0].box == tight_box(o2.masks[0, best], inclusive=True)  # SAM reads corners as pixel indices
    best3 = int(np.argmax(o3.scores[0]))
    assert o3.masks[0, best3].any()  # the square is found, so refinement 2's mask is the result
    assert np.array_equal(result.masks[0], o3.masks[0, best3])


class EmptyRefinement2(Recording):
    """A real decoder whose third decode (refinement 2) finds nothing: every mask emptied."""

    def decode(self, features, rgb, prompts, guidance=None):
        out = super().decode(features, rgb, prompts, guidance)
        if len(self.calls) == 3:
            out.masks[...] = False
        return out


def test_empty_refinement_2_keeps_refinement_1_mask(square, sam_backend):
    img, _ = square
    encoder, decoder = sam_backend
    dec = EmptyRefinement2(decoder)
    with torch.no_grad():
        result = run_cascade(dec, encoder.encode(img), img, _requests())
    assert len(dec.calls) == 3
    _, _, o2 = dec.calls[1]
    best = int(np.argmax(o2.scores[0]))
    assert o2.masks[0, best].any() and np.array_equal(result.masks[0], o2.masks[0, best])
    assert result.scores[0] == pytest.approx(o2.scores[0, best])


def test_persam_f_first_step_uses_weighted_multimask_logits(square, sam_backend):
    from perovss_ros.core.persam_f import combine_logits

    img, _ = square
    encoder, decoder = sam_backend
    dec = Recording(decoder)
    weights = torch.tensor([0.5, 0.3, 0.2])
    request = CascadeRequest(prompts=_requests()[0].prompts, scale_weights=weights, positive=(68.0, 58.0))
    with torch.no_grad():
        run_cascade(dec, encoder.encode(img), img, [request])
    (p1, g1, o1), (p2, _, _) = dec.calls[:2]
    assert p1[0].multimask is True and p1[0].points.tolist() == [[68.0, 58.0]] and p1[0].labels.tolist() == [1]
    assert g1 is None  # no guidance for the PerSAM-F step
    expected = combine_logits(o1.logits[0], weights)
    assert torch.allclose(p2[0].mask_logits[0], expected.to(p2[0].mask_logits.dtype), atol=1e-5)
    assert p2[0].points.tolist() == [[68.0, 58.0]]  # PerSAM-F refines from the positive point alone


def test_no_refinement_stops_after_the_first_decode(square):
    img, truth = square
    dec = Recording(GrabCutDecoder())
    result = run_cascade(dec, ClassicEncoder().encode(img), img, _requests(), refine=False)
    assert len(dec.calls) == 1
    assert dec.calls[0][0][0].box is None  # the first decode's prompts: points only
    assert np.array_equal(result.masks[0], dec.calls[0][2].masks[0, 0])
    assert (result.masks[0] & truth).sum() > 0.5 * truth.sum()
