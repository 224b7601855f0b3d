"""Training-free dense CLIP features: open_clip's ViT with ClearCLIP's last block.

ClearCLIP (Lan et al., ECCV 2024) keeps every block but the last as it is and
changes the last one to ``out_proj(softmax(q qᵀ · scale) v)``: no residual, query-
query attention, no feed-forward. The result goes through ``ln_post`` and ``proj``
like the class token would, so every patch token lands in the text space.

Position embeddings are interpolated (bicubic) from the tower's native grid to the
input's grid, so frames keep their aspect ratio instead of being squashed to the
tower's square size.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from open_clip.transformer import ResidualAttentionBlock, VisionTransformer
from torch import nn

from perovss_ros.core.errors import InvalidInputError


def supports_dense(visual: nn.Module) -> bool:
    """True for open_clip ViT towers whose last block ClearCLIP can rewrite.

    Needed: the plain ``VisionTransformer`` with class-token pooling, no attentional
    pooler, learnable or fixed position embeddings, and a standard
    ``ResidualAttentionBlock`` (``nn.MultiheadAttention``) last. timm towers
    (MobileCLIP) and the custom-attention variants fall back to masked crops.
    """
    if not isinstance(visual, VisionTransformer) or visual.attn_pool is not None or visual.proj is None:
        return False
    last = visual.transformer.resblocks[-1]
    return (type(last) is ResidualAttentionBlock and isinstance(last.attn, nn.MultiheadAttention)
            and last.attn.in_proj_weight is not None and not hasattr(last, "ln_1_kv"))


def interpolate_positions(positions: torch.Tensor, native_grid: tuple[int, int],
                          grid: tuple[int, int]) -> torch.Tensor:
    """``(1 + gh·gw)×C`` position embeddings for ``grid`` from ``(1 + nh·nw)×C`` ones on ``native_grid``.

    The class position is kept; patch positions are resized bicubically. The native
    grid is returned unchanged.
    """
    if tuple(grid) == tuple(native_grid):
        return positions
    cls_pos, patch_pos = positions[:1], positions[1:]
    nh, nw = native_grid
    patch_pos = patch_pos.reshape(1, nh, nw, -1).permute(0, 3, 1, 2)
    patch_pos = F.interpolate(patch_pos, size=tuple(grid), mode="bicubic", align_corners=False)
    return torch.cat([cls_pos, patch_pos.permute(0, 2, 3, 1).reshape(grid[0] * grid[1], -1)], dim=0)


def clearclip_block(block: ResidualAttentionBlock, x: torch.Tensor) -> torch.Tensor:
    """ClearCLIP's last block on batch-first tokens ``B×L×C``: ``ls_1(out_proj(softmax(q qᵀ/√d) v))``.

    ``q`` and ``v`` come from the block's own packed ``in_proj`` weights after
    ``ln_1``; the key projection is unused. ``ls_1`` (identity in CLIP) is kept
    because it is part of the attention branch.
    """
    attn: nn.MultiheadAttention = block.attn
    batch, length, width = x.shape
    heads = attn.num_heads
    head_dim = width // heads
    weight_q, _, weight_v = attn.in_proj_weight.chunk(3, dim=0)
    bias_q, bias_v = (None, None)
    if attn.in_proj_bias is not None:
        bias_q, _, bias_v = attn.in_proj_bias.chunk(3, dim=0)
    y = block.ln_1(x)
    q = F.linear(y, weight_q, bias_q).reshape(batch, length, heads, head_dim).transpose(1, 2)
    v = F.linear(y, weight_v, bias_v).reshape(batch, length, heads, head_dim).transpose(1, 2)
    weights = torch.softmax((q @ q.transpose(-1, -2)) / math.sqrt(head_dim), dim=-1)
    out = (weights @ v).transpose(1, 2).reshape(batch, length, width)
    return block.ls_1(attn.out_proj(out))


def dense_tokens(visual: VisionTransformer, pixels: torch.Tensor) -> torch.Tensor:
    """``B×gh×gw×D`` projected patch embeddings of normalised ``B×3×H×W`` pixels (H, W multiples of the patch).

    ``D`` is the tower's output (text-space) width; tokens are not normalised.
    """
    patch_h, patch_w = visual.patch_size
    if pixels.shape[-2] % patch_h or pixels.shape[-1] % patch_w:
        raise InvalidInputError(f"input {tuple(pixels.shape[-2:])} is not a multiple of the patch {visual.patch_size}")
    grid = (pixels.shape[-2] // patch_h, pixels.shape[-1] // patch_w)
    x = visual.conv1(pixels).flatten(2).transpose(1, 2)
    cls = visual.class_embedding.to(x.dtype).view(1, 1, -1).expand(x.shape[0], -1, -1)
    x = torch.cat([cls, x], dim=1)
    x = x + interpolate_positions(visual.positional_embedding, visual.grid_size, grid).to(x.dtype)
    x = visual.ln_pre(x)
    blocks = visual.transformer.resblocks
    batch_first = visual.transformer.batch_first
    x = x if batch_first else x.transpose(0, 1)
    for block in blocks[:-1]:
        x = block(x)
    x = x if batch_first else x.transpose(0, 1)
    x = visual.ln_post(clearclip_block(blocks[-1], x))
    tokens = x[:, 1:] @ visual.proj
    return tokens.reshape(x.shape[0], grid[0], grid[1], -1)
