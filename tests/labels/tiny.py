"""A tiny random-weight open_clip model for the labelling tests (nothing downloads)."""

from __future__ import annotations

import open_clip
import torch

from perovss_ros.core.labels import OpenClipEncoder

TINY_CONTEXT = 16


def tiny_clip(seed: int = 0) -> open_clip.CLIP:
    """open_clip ``CLIP``: ViT 32 px, patch 8 (4×4 grid), width 64, 2 layers, 4 heads; text width 64, 2 layers."""
    torch.manual_seed(seed)
    return open_clip.CLIP(
        embed_dim=32,
        vision_cfg={"image_size": 32, "patch_size": 8, "width": 64, "layers": 2, "head_width": 16},
        text_cfg={"context_length": TINY_CONTEXT, "vocab_size": 49408, "width": 64, "heads": 4, "layers": 2},
    ).eval()


def tiny_encoder(seed: int = 0, **options: object) -> OpenClipEncoder:
    """An OpenClipEncoder over ``tiny_clip(seed)`` with open_clip's bundled BPE tokenizer."""
    tokenizer = open_clip.tokenizer.SimpleTokenizer(context_length=TINY_CONTEXT)
    return OpenClipEncoder(tiny_clip(seed), tokenizer, f"tiny-clip:{seed}", **options)  # type: ignore[arg-type]
