"""One string picks the CLIP: ``synthetic-clip`` or an open_clip config name with its checkpoint."""

from __future__ import annotations

import os

from perovss_ros.core.errors import CheckpointError
from perovss_ros.core.labels.open_clip_encoder import OpenClipEncoder, open_clip_encoder


def build_clip_encoder(model: str, checkpoint: str | os.PathLike | None = None,
                       model_dir: str | os.PathLike | None = None, device: str = "cpu",
                       **options: object) -> OpenClipEncoder:
    """The labeller's encoder for ``model``.

    * ``synthetic-clip``: the built synthetic CLIP (standard recipe) from
      ``model_dir`` (default model directory); it knows only the synthetic world.
    * any open_clip config name (``ViT-B-16``, ``MobileCLIP-S1``): weights from
      ``checkpoint`` (safetensors or a ``weights_only`` state dict), required, since
      random weights label nothing.

    Raises CheckpointError saying what to run or place when the weights are missing.
    """
    from perovss_ros.core.labels import synthetic_clip

    if model == synthetic_clip.NAME:
        return synthetic_clip.synthetic_clip_encoder(model_dir=model_dir, device=device, **options)
    if checkpoint is None:
        raise CheckpointError(f"CLIP model {model!r} needs a checkpoint file (random weights label nothing); "
                              f"or use {synthetic_clip.NAME!r} (`perovss models build {synthetic_clip.NAME}`)")
    if not os.path.isfile(checkpoint):
        raise CheckpointError(f"CLIP checkpoint {checkpoint} does not exist")
    return open_clip_encoder(model, checkpoint, device=device, **options)
