"""PerSAM guidance inside SAM's decoder, checked against the formulas on small hand-made tensors."""

from __future__ import annotations

import math

import pytest
import torch
from segment_anything.modeling import TwoWayTransformer
from segment_anything.modeling.transformer import Attention

from perovss_ros.core.sam.guided import GuidedAttention, GuidedTwoWayTransformer, guided_probabilities


def test_guided_probabilities_hand_computed() -> None:
    # softmax([0, ln 2]) = [1/3, 2/3]; + bias [1, 0] -> softmax([4/3, 2/3]).
    logits = torch.tensor([0.0, math.log(2.0)]).reshape(1, 1, 1, 2)
    bias = torch.tensor([[1.0, 0.0]])
    got = guided_probabilities(logits, bias).reshape(-1)
    first = math.exp(4 / 3) / (math.exp(4 / 3) + math.exp(2 / 3))
    assert got.tolist() == pytest.approx([first, 1 - first], abs=1e-6)
    # A row with bias_on False keeps the plain softmax.
    plain = guided_probabilities(logits, bias, torch.tensor([False])).reshape(-1)
    assert plain.tolist() == pytest.approx([1 / 3, 2 / 3], abs=1e-6)


def _manual_attention(attn: Attention, q, k, v, bias=None):
    """softmax(softmax(q·kᵀ/√d) + bias) · v with the layer's own projections, written out per head."""
    heads = attn.num_heads
    qp, kp, vp = attn.q_proj(q), attn.k_proj(k), attn.v_proj(v)
    d = qp.shape[-1] // heads
    outs = []
    for h in range(heads):
        qh, kh, vh = (x[..., h * d:(h + 1) * d] for x in (qp, kp, vp))
        probs = torch.softmax(qh @ kh.transpose(1, 2) / math.sqrt(d), dim=-1)
        if bias is not None:
            probs = torch.softmax(probs + bias[:, None, :], dim=-1)
        outs.append(probs @ vh)
    return attn.out_proj(torch.cat(outs, dim=-1))


def test_guided_attention_matches_formula() -> None:
    torch.manual_seed(0)
    attn = GuidedAttention(8, 2, downsample_rate=2)
    q, k, v = torch.randn(3, 4, 8), torch.randn(3, 6, 8), torch.randn(3, 6, 8)
    bias = torch.rand(3, 6)
    with torch.no_grad():
        torch.testing.assert_close(attn(q, k, v, bias=bias), _manual_attention(attn, q, k, v, bias))
        # Without bias the guided layer is the plain segment_anything layer.
        assert torch.equal(attn(q, k, v), Attention.forward(attn, q, k, v))
        # Rows switched off by bias_on are exactly unguided.
        on = torch.tensor([True, False, True])
        mixed = attn(q, k, v, bias=bias, bias_on=on)
        torch.testing.assert_close(mixed[1], _manual_attention(attn, q, k, v)[1])
        torch.testing.assert_close(mixed[0], _manual_attention(attn, q, k, v, bias)[0])


def _manual_transformer(tr: TwoWayTransformer, image, image_pe, tokens, bias=None, target=None):
    """PerSAM's guided two-way transformer written out as its reference code computes it.

    Bias only in each block's token-to-image cross-attention, target added (in place) to the
    tokens before every block and to the final attention's queries.
    """
    keys = image.flatten(2).permute(0, 2, 1)
    key_pe = image_pe.flatten(2).permute(0, 2, 1)
    # As PerSAM's reference code: ``queries`` aliases the token tensor, which is also the query
    # encoding, and the target is added in place, so the first add reaches the encoding too.
    tokens = tokens.clone()
    queries = tokens
    tgt = None if target is None else target[:, None, :]
    for layer in tr.layers:
        if tgt is not None:
            queries += tgt
        if layer.skip_first_layer_pe:
            queries = _manual_attention(layer.self_attn, queries, queries, queries)
        else:
            q = queries + tokens
            queries = queries + _manual_attention(layer.self_attn, q, q, queries)
        queries = layer.norm1(queries)
        queries = layer.norm2(queries + _manual_attention(
            layer.cross_attn_token_to_image, queries + tokens, keys + key_pe, keys, bias))
        queries = layer.norm3(queries + layer.mlp(queries))
        keys = layer.norm4(keys + _manual_attention(
            layer.cross_attn_image_to_token, keys + key_pe, queries + tokens, queries))
    q = queries + tokens
    if tgt is not None:
        q += tgt
    queries = tr.norm_final_attn(queries + _manual_attention(tr.final_attn_token_to_image, q, keys + key_pe, keys))
    return queries, keys


@pytest.fixture(scope="module")
def small_transformers() -> tuple[TwoWayTransformer, GuidedTwoWayTransformer]:
    torch.manual_seed(1)
    vanilla = TwoWayTransformer(depth=2, embedding_dim=16, num_heads=2, mlp_dim=32).eval()
    guided = GuidedTwoWayTransformer(depth=2, embedding_dim=16, num_heads=2, mlp_dim=32).eval()
    guided.load_state_dict(vanilla.state_dict(), strict=True)  # same parameter names as upstream
    return vanilla, guided


@pytest.mark.parametrize("use_bias,use_target", [(True, False), (False, True), (True, True)])
def test_guided_transformer_matches_formula(small_transformers, use_bias: bool, use_target: bool) -> None:
    _, guided = small_transformers
    gen = torch.Generator().manual_seed(2)
    image, image_pe = torch.randn(2, 16, 3, 4, generator=gen), torch.randn(2, 16, 3, 4, generator=gen)
    tokens = torch.randn(2, 5, 16, generator=gen)
    bias = torch.rand(2, 12, generator=gen) if use_bias else None
    target = torch.randn(2, 16, generator=gen) if use_target else None
    with torch.no_grad():
        got = guided(image, image_pe, tokens, bias=bias, target_embedding=target)
        want = _manual_transformer(guided, image, image_pe, tokens, bias, target)
    torch.testing.assert_close(got[0], want[0])
    torch.testing.assert_close(got[1], want[1])


def test_guided_transformer_without_guidance_is_vanilla(small_transformers) -> None:
    vanilla, guided = small_transformers
    gen = torch.Generator().manual_seed(3)
    image, image_pe = torch.randn(2, 16, 3, 4, generator=gen), torch.randn(2, 16, 3, 4, generator=gen)
    tokens = torch.randn(2, 5, 16, generator=gen)
    with torch.no_grad():
        got, want = guided(image, image_pe, tokens), vanilla(image, image_pe, tokens)
        guided_out = guided(image, image_pe, tokens, bias=torch.rand(2, 12, generator=gen))
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
    assert not torch.allclose(guided_out[0], want[0])  # the bias does change the result


def test_target_reaches_every_layers_query_encoding_as_in_the_reference_code(small_transformers) -> None:
    # The reference code's in-place add makes the query encoding tokens + t from the first block
    # on, and the final attention's queries (last block's tokens) + (tokens + t) + t.
    _, guided = small_transformers
    gen = torch.Generator().manual_seed(4)
    image, image_pe = torch.randn(1, 16, 3, 4, generator=gen), torch.randn(1, 16, 3, 4, generator=gen)
    tokens = torch.randn(1, 5, 16, generator=gen)
    target = torch.randn(1, 16, generator=gen)
    seen: dict[str, list] = {"pe": [], "queries": [], "block_out": [], "final_q": []}

    def before_block(_module, _args, kwargs):
        seen["pe"].append(kwargs["query_pe"].clone())
        seen["queries"].append(kwargs["queries"].clone())

    def after_block(_module, _args, _kwargs, output):
        seen["block_out"].append(output[0].clone())

    def before_final(_module, args):
        seen["final_q"].append(args[0].clone())

    hooks = [layer.register_forward_pre_hook(before_block, with_kwargs=True) for layer in guided.layers]
    hooks += [layer.register_forward_hook(after_block, with_kwargs=True) for layer in guided.layers]
    # The final attention's queries are what its query projection sees.
    hooks.append(guided.final_attn_token_to_image.q_proj.register_forward_pre_hook(before_final))
    try:
        with torch.no_grad():
            guided(image, image_pe, tokens.clone(), target_embedding=target)
    finally:
        for hook in hooks:
            hook.remove()
    t = target[:, None, :]
    for pe in seen["pe"]:
        torch.testing.assert_close(pe, tokens + t)
    torch.testing.assert_close(seen["queries"][0], tokens + t)
    torch.testing.assert_close(seen["queries"][1], seen["block_out"][0] + t)
    torch.testing.assert_close(seen["final_q"][0], seen["block_out"][-1] + tokens + 2 * t)
