"""SAM image encoder behind the ``ImageEncoder`` protocol (the one expensive call per frame).

It runs as PyTorch modules, or (``graph`` given) as an exported encoder graph in
ONNX Runtime or a TensorRT engine; resizing and normalisation stay in torch either
way. On CUDA the torch path uploads the frame from pinned memory and, with
``half``, runs the encoder under fp16 autocast (the embedding comes out float32).
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np
import torch
from segment_anything.modeling import Sam
from segment_anything.utils.transforms import ResizeLongestSide

from perovss_ros.core.errors import InvalidInputError
from perovss_ros.core.types import Features
from perovss_ros.core.validation import check_image

EMBEDDING_KEY = "sam_embedding"
"""``Features.extra`` key of the raw ``1×C×h×w`` embedding the SAM decoder consumes."""
INPUT_HW_KEY = "sam_input_hw"
"""``Features.extra`` key of the resized (unpadded) input size ``(h, w)`` in pixels."""


class EncoderGraph(Protocol):
    """An exported encoder runner (``OnnxRuntimeEncoder``, ``TensorRtEncoder``)."""

    runtime: str

    def run_tensor(self, image: torch.Tensor) -> torch.Tensor:
        """``1×3×S×S`` float32 preprocessed image → ``1×256×S/16×S/16`` float32 embedding."""


class SamImageEncoder:
    """Encodes ``H×W×3 uint8 RGB`` images with a SAM ViT into ``256×h×w`` embeddings.

    The image is resized so its longest side is the model's input size
    (segment_anything ``ResizeLongestSide``, as ``SamPredictor.set_image``),
    normalised, padded bottom/right to a square and encoded. ``half`` (the torch
    path only) runs the network under autocast: fp16 on CUDA (what the backend
    sets there), bfloat16 on a CPU (only benchmarks' CPU dry runs ask for that).
    """

    def __init__(self, sam: Sam, model_id: str, graph: EncoderGraph | None = None, half: bool = False) -> None:
        self.sam = sam
        self.model_id = model_id
        self.graph = graph
        self.half = bool(half) and graph is None
        self.img_size = int(sam.image_encoder.img_size)
        self.transform = ResizeLongestSide(self.img_size)

    @property
    def device(self) -> torch.device:
        """Device the model runs on."""
        return self.sam.device

    @property
    def runtime(self) -> str:
        """``torch``, or the runtime of the exported graph that runs the network (``onnxruntime``, ``tensorrt``)."""
        return "torch" if self.graph is None else self.graph.runtime

    @property
    def precision(self) -> str:
        """``fp16``/``bf16`` when the torch path runs under autocast, else ``fp32`` (an engine's own aside)."""
        if not self.half:
            return "fp32"
        return "fp16" if self.device.type == "cuda" else "bf16"

    def encode_tensor(self, images: torch.Tensor) -> torch.Tensor:
        """Tensor layer: ``B×3×h×w`` float RGB in 0..255, already resized (longest side = input size).

        Returns the ``B×256×H'×W'`` embeddings (``H' = W' = input size / 16``).
        """
        if images.ndim != 4 or images.shape[1] != 3:
            raise InvalidInputError(f"encode_tensor expects B×3×h×w, got {tuple(images.shape)}")
        if max(images.shape[-2:]) > self.img_size:
            raise InvalidInputError(
                f"encode_tensor expects images resized to at most {self.img_size} px, "
                f"got {tuple(images.shape)}"
            )
        with torch.inference_mode():
            x = self.sam.preprocess(images.to(self.device, torch.float32))
            if self.graph is None:
                half = torch.float16 if self.device.type == "cuda" else torch.bfloat16
                with torch.autocast(self.device.type, dtype=half, enabled=self.half):
                    return self.sam.image_encoder(x).float()
            # The graph has one fixed batch of 1; a batch runs image by image.
            return torch.cat([self.graph.run_tensor(img[None]) for img in x]).to(self.device)

    def encode(self, rgb: np.ndarray) -> Features:
        """Numpy layer: encode one ``H×W×3 uint8 RGB`` image into :class:`Features`.

        ``Features.grid`` is the ``256×h×w`` float32 embedding (a view of
        ``extra["sam_embedding"]``, ``1×256×h×w``), ``stride`` the input pixels per
        grid cell, ``valid_hw`` the grid part covered by the unpadded image.
        """
        rgb = check_image(rgb)
        height, width = rgb.shape[:2]
        resized = self.transform.apply_image(np.ascontiguousarray(rgb))
        tensor = torch.from_numpy(resized)
        if self.device.type == "cuda":
            # Pinned host memory lets the copy run as DMA instead of through a pageable staging buffer.
            tensor = tensor.pin_memory().to(self.device, non_blocking=True)
        tensor = tensor.permute(2, 0, 1)[None]
        embedding = self.encode_tensor(tensor)
        grid_h, grid_w = int(embedding.shape[-2]), int(embedding.shape[-1])
        stride = self.img_size / grid_w
        input_hw = (int(resized.shape[0]), int(resized.shape[1]))
        return Features(
            grid=embedding[0],
            image_hw=(height, width),
            scale=self.img_size / max(height, width),
            stride=stride,
            valid_hw=(min(grid_h, math.ceil(input_hw[0] / stride)),
                      min(grid_w, math.ceil(input_hw[1] / stride))),
            extra={EMBEDDING_KEY: embedding, INPUT_HW_KEY: input_hw},
        )
