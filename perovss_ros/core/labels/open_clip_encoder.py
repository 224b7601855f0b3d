"""An open_clip model as the labeller's TextEncoder and RegionEncoder.

Regions are embedded one of two ways (``region_mode``):

* ``dense`` (ViT towers): one forward pass per frame with ClearCLIP's last block
  (``clearclip.py``); each segment is the coverage-weighted mean of the patch
  embeddings under its mask (``pooling.py``). The frame keeps its aspect ratio: its
  short side is resized to ``dense_short_side`` (default: the tower's training
  size), both sides rounded to whole patches, position embeddings interpolated.
* ``crops`` (every tower, the only way for timm towers such as MobileCLIP): each
  segment's box, widened by ``crop_context`` on every side and made square, is cut
  out with the pixels outside the mask set to the model's mean colour, resized to the
  tower's size and encoded; all K crops go through the tower as one batch.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import open_clip
import torch

from perovss_ros.core.errors import CheckpointError, InvalidInputError
from perovss_ros.core.labels import clearclip
from perovss_ros.core.labels.crops import masked_crop, resize_rgb
from perovss_ros.core.labels.pooling import coverage_weights, l2_normalise, pool_tokens
from perovss_ros.core.validation import check_image, check_mask

REGION_MODES = ("auto", "dense", "crops")


def check_masks(masks: np.ndarray | Sequence[np.ndarray], image_hw: tuple[int, int]) -> np.ndarray:
    """``K×H×W bool`` from a ``K×H×W`` array or a list of ``H×W`` masks; every mask non-empty, image-sized."""
    if isinstance(masks, np.ndarray) and masks.ndim == 3:
        masks = list(masks)
    if isinstance(masks, np.ndarray) or not isinstance(masks, Sequence):
        raise InvalidInputError(f"masks must be K×H×W bool or a list of H×W masks, got {type(masks).__name__} "
                                f"of shape {getattr(masks, 'shape', '?')}")
    if not masks:
        return np.zeros((0, *image_hw), bool)
    return np.stack([check_mask(m, image_hw, what=f"mask {k}") for k, m in enumerate(masks)])


class OpenClipEncoder:
    """TextEncoder and RegionEncoder over one open_clip ``CLIP``/``CustomTextCLIP`` model (eval, no grad)."""

    def __init__(self, model: torch.nn.Module, tokenizer: Callable[[list[str]], torch.Tensor], model_id: str,
                 region_mode: str = "auto", dense_short_side: int | None = None, crop_context: float = 0.1,
                 device: str | torch.device = "cpu",
                 mean: Sequence[float] = open_clip.OPENAI_DATASET_MEAN,
                 std: Sequence[float] = open_clip.OPENAI_DATASET_STD) -> None:
        if region_mode not in REGION_MODES:
            raise InvalidInputError(f"region_mode must be one of {', '.join(REGION_MODES)}, got {region_mode!r}")
        dense_ok = clearclip.supports_dense(model.visual)
        if region_mode == "dense" and not dense_ok:
            raise InvalidInputError(f"{model_id}: the image tower has no dense tokens ClearCLIP can use; "
                                    "use region_mode 'crops' (or 'auto')")
        if crop_context < 0:
            raise InvalidInputError(f"crop_context must be ≥ 0, got {crop_context}")
        self.model = model.eval().to(device)
        self.tokenizer = tokenizer
        self.model_id = model_id
        self.device = torch.device(device)
        self.region_mode = "dense" if region_mode == "auto" and dense_ok else (
            "crops" if region_mode == "auto" else region_mode)
        size = model.visual.image_size  # a ViT's (h, w); a ModifiedResNet's one int
        self.image_size: tuple[int, int] = (int(size), int(size)) if isinstance(size, int) else (  # type: ignore[assignment]
            int(size[0]), int(size[1]))
        self.dense_short_side = int(dense_short_side or min(self.image_size))
        self.crop_context = float(crop_context)
        self._mean = np.asarray(mean, np.float32)
        self._std = np.asarray(std, np.float32)
        with torch.inference_mode():
            self.logit_scale = float(model.logit_scale.exp())
            self.embed_dim = int(self.model.encode_text(self.tokenizer(["a"]).to(self.device)).shape[1])

    # -- text ---------------------------------------------------------------------------------------------------
    def encode_text(self, texts: list[str]) -> np.ndarray:
        """``N×D float32`` L2-normalised embeddings of ``texts`` (one batched forward pass)."""
        if not texts:
            return np.zeros((0, self.embed_dim), np.float32)
        with torch.inference_mode():
            tokens = self.tokenizer(list(texts)).to(self.device)
            return self.model.encode_text(tokens, normalize=True).float().cpu().numpy()

    # -- regions ------------------------------------------------------------------------------------------------
    def encode_regions(self, rgb: np.ndarray, masks: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """``K×D float32`` L2-normalised embeddings of the ``K×H×W bool`` masks of ``H×W×3 uint8 RGB`` ``rgb``."""
        rgb = check_image(rgb)
        masks = check_masks(masks, rgb.shape[:2])
        if len(masks) == 0:
            return np.zeros((0, self.embed_dim), np.float32)
        if self.region_mode == "dense":
            tokens = self.dense_embeddings(rgb)
            return pool_tokens(tokens, coverage_weights(masks, tokens.shape[:2]))
        return self._encode_crops(rgb, masks)

    def dense_input_hw(self, image_hw: tuple[int, int]) -> tuple[int, int]:
        """``(H', W')`` the frame is resized to for the dense pass: short side ``dense_short_side``, whole patches."""
        patch_h, patch_w = self.model.visual.patch_size
        h, w = image_hw
        scale = self.dense_short_side / min(h, w)
        return (max(patch_h, round(h * scale / patch_h) * patch_h),
                max(patch_w, round(w * scale / patch_w) * patch_w))

    def dense_embeddings(self, rgb: np.ndarray) -> np.ndarray:
        """``gh×gw×D float32`` ClearCLIP patch embeddings (not normalised) of ``H×W×3 uint8 RGB`` ``rgb``.

        Patch ``(i, j)`` covers rows ``[i·H/gh, (i+1)·H/gh)`` and columns
        ``[j·W/gw, (j+1)·W/gw)`` of the original image.
        """
        if self.region_mode != "dense":
            raise InvalidInputError(f"{self.model_id} embeds regions by crops; it has no dense embeddings")
        rgb = check_image(rgb)
        pixels = self._pixels([resize_rgb(rgb, self.dense_input_hw(rgb.shape[:2]))])
        with torch.inference_mode():
            return clearclip.dense_tokens(self.model.visual, pixels)[0].float().cpu().numpy()

    def masked_crops(self, rgb: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """``K×S×S×3 uint8 RGB`` square crops (``S×S`` the tower's size) of each mask, background in the mean colour."""
        fill = np.round(self._mean * 255.0).astype(np.uint8)
        return np.stack([masked_crop(rgb, mask, self.image_size, self.crop_context, fill) for mask in masks])

    def encode_images(self, images: np.ndarray) -> np.ndarray:
        """``B×D float32`` L2-normalised global embeddings of ``B×S×S×3 uint8 RGB`` images at the tower's size."""
        with torch.inference_mode():
            feats = self.model.encode_image(self._pixels(list(images)))
        return l2_normalise(feats.float().cpu().numpy())

    def _encode_crops(self, rgb: np.ndarray, masks: np.ndarray) -> np.ndarray:
        return self.encode_images(self.masked_crops(rgb, masks))

    def _pixels(self, images: list[np.ndarray]) -> torch.Tensor:
        """``B×3×H×W float32`` normalised tensor of equally sized ``H×W×3 uint8 RGB`` images."""
        batch = (np.stack(images).astype(np.float32) / 255.0 - self._mean) / self._std
        return torch.from_numpy(batch).permute(0, 3, 1, 2).contiguous().to(self.device)


def load_state_dict(model: torch.nn.Module, path: str | os.PathLike) -> None:
    """Load a checkpoint into ``model`` in place: safetensors, or a torch state dict read with ``weights_only``.

    Accepts a plain state dict, one under ``state_dict``, and ``module.`` prefixes
    (DataParallel). Every mismatch is a CheckpointError naming the file.
    """
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
            state = state["state_dict"]
        if not isinstance(state, dict):
            raise CheckpointError(f"{path} holds {type(state).__name__}, not a state dict")
        state = {k.removeprefix("module."): v for k, v in state.items()}
        model.load_state_dict(state, strict=True)
    except CheckpointError:
        raise
    except Exception as exc:  # unreadable file, pickled objects refused by weights_only, shape mismatches
        raise CheckpointError(f"cannot load open_clip weights from {path}: {exc}") from exc


def open_clip_encoder(name: str, checkpoint: str | os.PathLike | None = None, device: str = "cpu",
                      **options: object) -> OpenClipEncoder:
    """An OpenClipEncoder for open_clip config ``name`` (e.g. ``ViT-B-16``), offline.

    ``checkpoint`` None gives random weights (tests only: they label nothing).
    ``options`` go to OpenClipEncoder (``region_mode``, ``dense_short_side``, ...).
    """
    try:
        model = open_clip.create_model(name, pretrained=None)
        tokenizer = open_clip.get_tokenizer(name)
    except Exception as exc:  # unknown config, or a tokenizer that would need the network
        raise CheckpointError(f"cannot build open_clip model {name!r} offline: {exc}") from exc
    if checkpoint is not None:
        load_state_dict(model, checkpoint)
    model_id = f"open_clip:{name}:{Path(checkpoint).name if checkpoint else 'random'}"
    return OpenClipEncoder(model, tokenizer, model_id, device=device, **options)  # type: ignore[arg-type]
