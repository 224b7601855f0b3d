"""Work shared across prompt sets in the SAM decoder gives the same results as decoding each set alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from perovss_ros.core.cascade import CascadeRequest, best_of, run_cascade
from perovss_ros.core.sam import build_sam_backend
from perovss_ros.core.types import Guidance, Prompts


@pytest.fixture(scope="module")
def backend():
    return build_sam_backend({"model": "tiny", "seed": 1, "device": "cpu"})


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    """160×120 RGB: two coloured blocks on noise."""
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 90, (120, 160, 3), dtype=np.uint8)
    rgb[20:60, 20:70] = (200, 60, 40)
    rgb[70:110, 90:150] = (40, 180, 90)
    return rgb


def _guided_sets(count: int, seed: int) -> tuple[list[Prompts], list[Guidance]]:
    gen = torch.Generator().manual_seed(seed)
    prompts, guides = [], []
    for _ in range(count):
        xy = (torch.rand(2, 2, generator=gen) * torch.tensor([159.0, 119.0])).numpy().astype(np.float32)
        prompts.append(Prompts(xy, np.array([1, 0])))
        guides.append(Guidance(torch.rand(32, 32, generator=gen), torch.randn(256, generator=gen)))
    return prompts, guides


def test_guided_sets_decode_as_alone_without_projecting_the_image(backend, image) -> None:
    encoder, decoder = backend
    feats = encoder.encode(image)
    prompts, guides = _guided_sets(4, seed=11)
    grid = feats.grid_hw[0] * feats.grid_hw[1]
    transformer = decoder.sam.mask_decoder.transformer
    projections = [p for layer in transformer.layers
                   for p in (layer.cross_attn_token_to_image.k_proj, layer.cross_attn_token_to_image.v_proj,
                             layer.cross_attn_image_to_token.q_proj, layer.cross_attn_image_to_token.k_proj)]
    projections += [transformer.final_attn_token_to_image.k_proj, transformer.final_attn_token_to_image.v_proj]
    rows: list[int] = []
    hooks = [p.register_forward_hook(lambda _m, args, _out: rows.append(int(args[0].shape[-2])))
             for p in projections]
    try:
        batched = decoder.decode(feats, image, prompts, guides)
    finally:
        for hook in hooks:
            hook.remove()
    # Only the token side is projected (few_token_attention): every projection saw a few rows, none the grid.
    assert rows and max(rows) < 16 < grid
    for i, (prompt, guide) in enumerate(zip(prompts, guides, strict=True)):
        alone = decoder.decode(feats, image, [prompt], [guide])
        torch.testing.assert_close(batched.logits[i], alone.logits[0], atol=1e-4, rtol=1e-4)
        np.testing.assert_allclose(batched.scores[i], alone.scores[0], atol=1e-5)


def test_decode_best_is_the_best_row_of_decode(backend, image) -> None:
    encoder, decoder = backend
    feats = encoder.encode(image)
    prompts, guides = _guided_sets(3, seed=12)
    first = decoder.decode(feats, image, prompts, guides)
    refine = [Prompts(p.points, p.labels, mask_logits=first.logits[i, :1], multimask=True)
              for i, p in enumerate(prompts)]
    full = decoder.decode(feats, image, refine)
    best = decoder.decode_best(feats, image, refine)
    want = best_of(full)
    assert best.masks.shape == (3, 1, 120, 160) and best.scores.shape == (3, 1)
    assert np.array_equal(best.masks[:, 0], want.masks)
    assert np.array_equal(best.scores[:, 0], want.scores)
    assert torch.equal(best.logits[:, 0], want.logits)
    empty = decoder.decode_best(feats, image, [])
    assert empty.masks.shape == (0, 1, 120, 160) and empty.scores.shape == (0, 1)


class _DecodeOnly:
    """The same decoder seen through the bare MaskDecoder protocol (no decode_best)."""

    def __init__(self, decoder) -> None:
        self._decoder = decoder
        self.supports_guidance = True

    def decode(self, features, rgb, prompts, guidance=None):
        return self._decoder.decode(features, rgb, prompts, guidance)


def test_cascade_gives_the_same_masks_with_and_without_decode_best(backend, image) -> None:
    encoder, decoder = backend
    feats = encoder.encode(image)
    prompts, guides = _guided_sets(3, seed=13)
    requests = [CascadeRequest(prompts=p, guidance=g) for p, g in zip(prompts, guides, strict=True)]
    fast = run_cascade(decoder, feats, image, requests)
    plain = run_cascade(_DecodeOnly(decoder), feats, image, requests)
    assert np.array_equal(fast.masks, plain.masks)
    assert np.array_equal(fast.scores, plain.scores)
    assert torch.equal(fast.logits, plain.logits)
