"""The SAM decoder (prompt encoding + guided mask decoding) as one exportable graph.

Its tensor names and shapes are in :mod:`perovss_ros.core.sam.graph_names`. This
module defines the graph and serialises it to ONNX; it imports nothing of the
backend, so the backend can export it in memory (``runtime: onnxruntime``) and
the file exporter (:mod:`perovss_ros.core.sam.export`) can build on the backend.
"""

from __future__ import annotations

import io
import os
import warnings

import torch
from segment_anything.modeling import Sam
from torch import Tensor, nn

from perovss_ros.core.sam.graph_names import DYNAMIC_AXES, OUTPUT_NAMES, input_names
from perovss_ros.core.sam.guided import GuidedMaskDecoder


class DecoderGraph(nn.Module):
    """Prompt encoding + mask decoding of a ``Sam`` as one module with tensor inputs (export-friendly)."""

    def __init__(self, sam: Sam) -> None:
        super().__init__()
        if not isinstance(sam.mask_decoder, GuidedMaskDecoder):
            raise TypeError("DecoderGraph needs a Sam whose mask_decoder is a GuidedMaskDecoder")
        self.prompt_encoder = sam.prompt_encoder
        self.mask_decoder = sam.mask_decoder
        self.img_size = int(sam.image_encoder.img_size)

    def embed_points(self, point_coords: Tensor, point_labels: Tensor) -> Tensor:
        """``B×N×2`` input-frame coordinates and ``B×N`` labels → ``B×N×256`` sparse embeddings.

        The same embedding as ``PromptEncoder`` (box corners are labels 2/3),
        written with masks instead of boolean indexing so that it traces.
        """
        encoder = self.prompt_encoder
        coords = (point_coords + 0.5) / self.img_size
        embedding = encoder.pe_layer._pe_encoding(coords)
        labels = point_labels.unsqueeze(-1)
        embedding = embedding * (labels != -1) + encoder.not_a_point_embed.weight * (labels == -1)
        for value, table in enumerate(encoder.point_embeddings):
            embedding = embedding + table.weight * (labels == value)
        return embedding

    def forward(self, image_embeddings: Tensor, point_coords: Tensor, point_labels: Tensor, mask_input: Tensor,
                has_mask_input: Tensor, attention_bias: Tensor | None = None, bias_on: Tensor | None = None,
                target_embedding: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """See the module docstring for shapes; returns ``(iou_predictions, low_res_masks)``."""
        sparse = self.embed_points(point_coords, point_labels)
        has_mask = has_mask_input.reshape(-1, 1, 1, 1)
        no_mask = self.prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1)
        dense = has_mask * self.prompt_encoder.mask_downscaling(mask_input) + (1 - has_mask) * no_mask
        masks, iou = self.mask_decoder.predict_masks_guided(
            image_embeddings, self.prompt_encoder.get_dense_pe(), sparse, dense, attention_bias,
            None if bias_on is None else bias_on > 0.5, target_embedding,
        )
        return iou, masks


def example_inputs(sam: Sam, num_sets: int = 2, num_points: int = 3, guided: bool = False
                   ) -> tuple[Tensor, ...]:
    """Random inputs of the right shapes for tracing and checking (deterministic)."""
    gen = torch.Generator().manual_seed(0)
    grid_h, grid_w = sam.prompt_encoder.image_embedding_size
    img = int(sam.image_encoder.img_size)
    guidance = (
        torch.rand(num_sets, grid_h * grid_w, generator=gen),
        (torch.arange(num_sets) % 2).float(),
        torch.randn(num_sets, sam.prompt_encoder.embed_dim, generator=gen) * (torch.arange(num_sets) % 3 > 0)[:, None],
    ) if guided else ()
    return (
        torch.randn(1, sam.prompt_encoder.embed_dim, grid_h, grid_w, generator=gen),
        torch.rand(num_sets, num_points, 2, generator=gen) * img,
        torch.randint(-1, 4, (num_sets, num_points), generator=gen).float(),
        torch.randn(num_sets, 1, 4 * grid_h, 4 * grid_w, generator=gen),
        (torch.arange(num_sets) % 2).float(),
        *guidance,
    )


def export_decoder_onnx(sam: Sam, path: str | os.PathLike | io.BytesIO, opset: int = 17,
                        guided: bool = False) -> str | os.PathLike | io.BytesIO:
    """Export the decoder graph of ``sam`` to ONNX at ``path`` or into a buffer (dynamic sets and points)."""
    graph = DecoderGraph(sam).eval()
    inputs = tuple(t.to(sam.device) for t in example_inputs(sam, guided=guided))
    # The tracer warns about the Python shape check in predict_masks_guided (shapes agree by
    # construction), and the TorchScript exporter about itself: the dynamo exporter needs onnxscript,
    # which this environment does not have.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
        warnings.simplefilter("ignore", category=DeprecationWarning)
        torch.onnx.export(
            graph, inputs, path if isinstance(path, io.BytesIO) else str(path),
            input_names=list(input_names(guided)),
            output_names=list(OUTPUT_NAMES), opset_version=opset,
            dynamic_axes={k: v for k, v in DYNAMIC_AXES.items() if k in input_names(guided) + OUTPUT_NAMES},
            dynamo=False, do_constant_folding=True,
        )
    return path
