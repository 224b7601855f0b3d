"""String-keyed registry of Segment Anything architectures (``tiny``, ``mobile``, ``vit_b``, ``vit_l``, ``vit_h``).

Builders here only construct the network (random initialisation); weights are
loaded by :mod:`perovss_ros.core.sam.weights`. ``tiny`` is the test
configuration of DESIGN.md and never has a checkpoint: its weights come from the
seed, so two builds with one seed are identical.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch
from segment_anything import sam_model_registry
from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

from perovss_ros.core.errors import InvalidInputError
from perovss_ros.core.sam.tiny_vit import TinyViT, TinyVitConfig


@dataclass(frozen=True)
class SamSpec:
    """One registered architecture.

    ``build`` constructs the randomly initialised ``Sam``; ``checkpoint`` is the
    catalogue name of its official weights (``perovss_ros.core.checkpoints``),
    or None when the model runs on seeded random weights.
    """

    name: str
    build: Callable[[], Sam]
    checkpoint: str | None


def _sam_around(image_encoder: torch.nn.Module, img_size: int) -> Sam:
    """SAM's prompt encoder and two-way mask decoder (the official sizes) around ``image_encoder``.

    ``image_encoder`` maps ``B×3×S×S`` to ``B×256×S/16×S/16`` (S = ``img_size``).
    """
    embed = 256
    grid = img_size // 16
    return Sam(
        image_encoder=image_encoder,
        prompt_encoder=PromptEncoder(
            embed_dim=embed,
            image_embedding_size=(grid, grid),
            input_image_size=(img_size, img_size),
            mask_in_chans=16,
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=2, embedding_dim=embed, mlp_dim=2048, num_heads=8),
            transformer_dim=embed,
            iou_head_depth=3,
            iou_head_hidden_dim=256,
        ),
    )


def build_tiny_sam() -> Sam:
    """The DESIGN.md ``tiny`` test SAM: 512 px input, 32×32 embedding grid, 128×128 low-res masks."""
    encoder = ImageEncoderViT(
        img_size=512,
        patch_size=16,
        embed_dim=192,
        depth=2,
        num_heads=3,
        mlp_ratio=4,
        qkv_bias=True,
        use_rel_pos=True,
        global_attn_indexes=(1,),
        window_size=14,
        out_chans=256,
        # The official builders use eps 1e-6; keep the family consistent.
        norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
    )
    return _sam_around(encoder, 512)


def build_mobile_sam() -> Sam:
    """MobileSAM (its ``vit_t`` builder): TinyViT-5M + SAM's neck, 1024 px input, 64×64 grid."""
    return _sam_around(TinyViT(TinyVitConfig()), 1024)


def _official(name: str) -> Callable[[], Sam]:
    """segment_anything's own builder for ``name``, without a checkpoint (we load weights safely)."""
    return partial(sam_model_registry[name], checkpoint=None)


SAM_MODELS: dict[str, SamSpec] = {
    spec.name: spec
    for spec in (
        SamSpec("tiny", build_tiny_sam, None),
        SamSpec("mobile", build_mobile_sam, "sam_mobile"),
        SamSpec("vit_b", _official("vit_b"), "sam_vit_b"),
        SamSpec("vit_l", _official("vit_l"), "sam_vit_l"),
        SamSpec("vit_h", _official("vit_h"), "sam_vit_h"),
    )
}


def sam_spec(model: str) -> SamSpec:
    """The registry entry of ``model``; InvalidInputError listing the known names otherwise."""
    spec = SAM_MODELS.get(model)
    if spec is None:
        known = ", ".join(SAM_MODELS)
        raise InvalidInputError(f"unknown SAM model {model!r}; choose one of: {known}")
    return spec


def build_sam_model(model: str, seed: int = 0) -> Sam:
    """Construct ``model`` with random weights drawn from ``seed``, in eval mode on the CPU.

    The global torch RNG is left untouched (the build runs in a forked RNG), so
    building a model never changes what other code draws.
    """
    spec = sam_spec(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        sam = spec.build()
    return sam.eval()
