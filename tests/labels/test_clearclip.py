"""ClearCLIP's last block against a by-hand computation with the tiny tower's own weights."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from perovss_ros.core.labels import clearclip
from tests.labels.tiny import tiny_clip


def _layer_norm(x: torch.Tensor, norm: torch.nn.LayerNorm) -> torch.Tensor:
    return F.layer_norm(x, (x.shape[-1],), norm.weight, norm.bias, norm.eps)


def test_last_block_matches_hand_computation() -> None:
    visual = tiny_clip(seed=3).visual
    torch.manual_seed(7)
    pixels = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        got = clearclip.dense_tokens(visual, pixels)

        # Everything before the last block is open_clip's own forward.
        x = visual._embeds(pixels)
        x = visual.transformer.resblocks[0](x)
        last = visual.transformer.resblocks[1]
        width, heads = 64, 4
        head_dim = width // heads
        weight, bias = last.attn.in_proj_weight, last.attn.in_proj_bias
        y = _layer_norm(x, last.ln_1)
        expected = torch.empty(2, 16, 32)
        for b in range(2):
            out_heads = []
            for h in range(heads):
                rows = slice(h * head_dim, (h + 1) * head_dim)
                q = y[b] @ weight[:width][rows].T + bias[:width][rows]
                v = y[b] @ weight[2 * width:][rows].T + bias[2 * width:][rows]
                logits = q @ q.T / np.sqrt(head_dim)
                attn = torch.exp(logits - logits.max(dim=1, keepdim=True).values)
                attn = attn / attn.sum(dim=1, keepdim=True)
                out_heads.append(attn @ v)
            out = torch.cat(out_heads, dim=1) @ last.attn.out_proj.weight.T + last.attn.out_proj.bias
            out = _layer_norm(out, visual.ln_post)
            expected[b] = out[1:] @ visual.proj
    assert got.shape == (2, 4, 4, 32)
    torch.testing.assert_close(got.reshape(2, 16, 32), expected, atol=1e-5, rtol=1e-4)


def test_the_class_token_path_is_untouched_by_the_hook() -> None:
    # ClearCLIP reads the tower; it must not change what encode_image returns.
    model = tiny_clip(seed=1)
    pixels = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        before = model.encode_image(pixels)
        clearclip.dense_tokens(model.visual, pixels)
        after = model.encode_image(pixels)
    torch.testing.assert_close(before, after)


def test_non_native_inputs_get_interpolated_positions() -> None:
    visual = tiny_clip().visual
    assert clearclip.supports_dense(visual)
    pos = visual.positional_embedding
    assert clearclip.interpolate_positions(pos, (4, 4), (4, 4)) is pos
    wide = clearclip.interpolate_positions(pos, (4, 4), (4, 6))
    assert wide.shape == (1 + 24, 64)
    torch.testing.assert_close(wide[0], pos[0])
    # A constant position field stays constant whatever the grid.
    flat = torch.cat([pos[:1], pos[1:2].expand(16, -1)])
    torch.testing.assert_close(clearclip.interpolate_positions(flat, (4, 4), (3, 5))[1:],
                               pos[1:2].expand(15, -1), atol=1e-5, rtol=1e-5)
    with torch.no_grad():
        tokens = clearclip.dense_tokens(visual, torch.randn(1, 3, 32, 48))
    assert tokens.shape == (1, 4, 6, 32)
    assert torch.isfinite(tokens).all()
