"""The cross-attentions computed without projecting the image equal segment_anything's Attention."""

from __future__ import annotations

import pytest
import torch
from segment_anything.modeling.transformer import Attention

from perovss_ros.core.sam.few_token_attention import attend_image_to_tokens, attend_tokens_to_image
from perovss_ros.core.sam.guided import guided_probabilities


@pytest.fixture(scope="module")
def attention() -> Attention:
    torch.manual_seed(0)
    attn = Attention(16, 4, downsample_rate=2).eval()
    with torch.no_grad():  # non-zero biases: the factored form must carry them
        for proj in (attn.q_proj, attn.k_proj, attn.v_proj, attn.out_proj):
            proj.bias.normal_()
    return attn


def _sides(batch_tokens: int, batch_image: int, tokens: int = 5, cells: int = 30):
    gen = torch.Generator().manual_seed(batch_tokens * 10 + batch_image)
    return torch.randn(batch_tokens, tokens, 16, generator=gen), torch.randn(batch_image, cells, 16, generator=gen)


@pytest.mark.parametrize("batch_image", [3, 1])
def test_tokens_to_image_equals_attention(attention: Attention, batch_image: int) -> None:
    tokens, image = _sides(3, batch_image)
    keys = image + 0.5
    with torch.no_grad():
        got = attend_tokens_to_image(attention, tokens, keys, image)
        want = attention(tokens, keys.expand(3, -1, -1), image.expand(3, -1, -1))
    assert got.shape == (3, 5, 16)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("batch_image", [3, 1])
def test_image_to_tokens_equals_attention(attention: Attention, batch_image: int) -> None:
    tokens, image = _sides(3, batch_image)
    with torch.no_grad():
        got = attend_image_to_tokens(attention, image, tokens + 0.5, tokens)
        want = attention(image.expand(3, -1, -1), tokens + 0.5, tokens)
    assert got.shape == (3, 30, 16)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_tokens_to_image_takes_persams_weighting(attention: Attention) -> None:
    tokens, image = _sides(2, 2)
    bias = torch.rand(2, 30, generator=torch.Generator().manual_seed(5))
    on = torch.tensor([True, False])

    def reference(attn: Attention, q, k, v):
        """segment_anything's Attention with PerSAM's re-weighting, written out."""
        q = attn._separate_heads(attn.q_proj(q), attn.num_heads)
        k = attn._separate_heads(attn.k_proj(k), attn.num_heads)
        v = attn._separate_heads(attn.v_proj(v), attn.num_heads)
        logits = q @ k.transpose(2, 3) / q.shape[-1] ** 0.5
        return attn.out_proj(attn._recombine_heads(guided_probabilities(logits, bias, on) @ v))

    with torch.no_grad():
        got = attend_tokens_to_image(attention, tokens, image, image,
                                     lambda logits: guided_probabilities(logits, bias, on))
        want = reference(attention, tokens, image, image)
        plain = attention(tokens, image, image)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got[1], plain[1], atol=1e-5, rtol=1e-5)  # bias off for the second set
    assert not torch.allclose(got[0], plain[0], atol=1e-3)  # and on for the first
