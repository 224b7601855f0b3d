"""The SAM decoder as one exportable graph (ONNX / TensorRT), bound by tensor name.

The names below are the contract between the exporter and every runtime that
loads the graph (the same names as segment_anything's and nanosam's exports):

inputs
  ``image_embeddings``  ``1×256×h×w`` float32 (the encoder output)
  ``point_coords``      ``B×N×2`` float32, points in the *model input* frame
                        (after ``ResizeLongestSide``), box corners as two points
  ``point_labels``      ``B×N`` float32: 1 positive, 0 negative, 2 box top-left,
                        3 box bottom-right, -1 padding
  ``mask_input``        ``B×1×4h×4w`` float32 low-res logits (zeros when unused)
  ``has_mask_input``    ``B`` float32, 1 where ``mask_input`` is used
outputs
  ``iou_predictions``   ``B×4`` float32 (mask token 0 = single mask, 1..3 multimask)
  ``low_res_masks``     ``B×4×4h×4w`` float32 logits

``B`` (prompt sets) and ``N`` (points per set) are dynamic axes.

The *guided* variant (perovss's own runtime) adds PerSAM's guidance inputs
``attention_bias`` ``B×h·w``, ``bias_on`` ``B`` (1 where the bias applies) and
``target_embedding`` ``B×256`` (zeros = none); with ``bias_on`` 0 and a zero
target a row decodes exactly as unguided SAM.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from segment_anything.modeling import Sam
from torch import Tensor, nn

from perovss_ros.core.errors import CheckpointError
from perovss_ros.core.sam.guided import GuidedMaskDecoder

INPUT_NAMES = ("image_embeddings", "point_coords", "point_labels", "mask_input", "has_mask_input")
OUTPUT_NAMES = ("iou_predictions", "low_res_masks")
GUIDANCE_INPUT_NAMES = ("attention_bias", "bias_on", "target_embedding")
DYNAMIC_AXES = {
    "attention_bias": {0: "num_sets"},
    "bias_on": {0: "num_sets"},
    "target_embedding": {0: "num_sets"},
    "point_coords": {0: "num_sets", 1: "num_points"},
    "point_labels": {0: "num_sets", 1: "num_points"},
    "mask_input": {0: "num_sets"},
    "has_mask_input": {0: "num_sets"},
    "iou_predictions": {0: "num_sets"},
    "low_res_masks": {0: "num_sets"},
}


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


def input_names(guided: bool) -> tuple[str, ...]:
    """The graph's input names, in order (with PerSAM's guidance inputs when ``guided``)."""
    return INPUT_NAMES + GUIDANCE_INPUT_NAMES if guided else INPUT_NAMES


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
    # The tracer warns about the Python shape check in predict_masks_guided (shapes agree by
    # construction), and the TorchScript exporter about itself: the dynamo exporter needs onnxscript,
    # which this environment does not have.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
        warnings.simplefilter("ignore", category=DeprecationWarning)
        torch.onnx.export(
            graph, example_inputs(sam, guided=guided), path if isinstance(path, io.BytesIO) else str(path),
            input_names=list(input_names(guided)),
            output_names=list(OUTPUT_NAMES), opset_version=opset,
            dynamic_axes={k: v for k, v in DYNAMIC_AXES.items() if k in input_names(guided) + OUTPUT_NAMES},
            dynamo=False, do_constant_folding=True,
        )
    return path


def check_onnx_decoder(sam: Sam, path: str | os.PathLike, num_sets: int = 3, num_points: int = 4,
                       atol: float = 1e-4, guided: bool = False) -> float:
    """Run the exported graph in onnxruntime on fresh shapes; return max |ONNX − torch| of the outputs.

    Raises CheckpointError when the difference exceeds ``atol``.
    """
    import onnxruntime

    inputs = example_inputs(sam, num_sets, num_points, guided)
    with torch.no_grad():
        iou_ref, masks_ref = DecoderGraph(sam).eval()(*inputs)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feed = {n: t.numpy() for n, t in zip(input_names(guided), inputs, strict=True)}
    iou, masks = session.run(list(OUTPUT_NAMES), feed)
    error = float(max(np.abs(masks - masks_ref.numpy()).max(), np.abs(iou - iou_ref.numpy()).max()))
    if not error <= atol:
        raise CheckpointError(f"exported decoder {path} differs from PyTorch by {error:.2e} (> {atol:.0e})")
    return error


def trtexec_shapes(sam: Sam, max_sets: int = 8, max_points: int = 8) -> str:
    """The ``trtexec`` min/opt/max shape flags for this graph (1 set of 1 point up to the given maxima)."""
    grid_h, grid_w = sam.prompt_encoder.image_embedding_size
    dim = sam.prompt_encoder.embed_dim

    def shapes(sets: int, points: int) -> str:
        return (f"image_embeddings:1x{dim}x{grid_h}x{grid_w},point_coords:{sets}x{points}x2,"
                f"point_labels:{sets}x{points},mask_input:{sets}x1x{4 * grid_h}x{4 * grid_w},"
                f"has_mask_input:{sets}")

    return (f"--minShapes={shapes(1, 1)} --optShapes={shapes(max(1, max_sets // 2), 4)} "
            f"--maxShapes={shapes(max_sets, max_points)}")


def main(argv: list[str] | None = None) -> int:
    """``python -m perovss_ros.core.sam.decoder_graph``: export the decoder, check it in onnxruntime."""
    import argparse

    from perovss_ros.core.errors import PerovssError
    from perovss_ros.core.sam.backend import build_sam_backend

    parser = argparse.ArgumentParser(description="Export the SAM mask decoder (dynamic prompt sets) to ONNX "
                                                 "and check it against PyTorch in onnxruntime.")
    parser.add_argument("--model", default="vit_b", help="tiny | vit_b | vit_l | vit_h")
    parser.add_argument("--checkpoint", default="", help="checkpoint file or directory ('' = default dir)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the tiny model's random weights")
    parser.add_argument("--output", required=True, help="ONNX file to write")
    parser.add_argument("--opset", type=int, default=17)
    args = parser.parse_args(argv)
    try:
        encoder, _ = build_sam_backend({"model": args.model, "checkpoint": args.checkpoint, "seed": args.seed})
        path = export_decoder_onnx(encoder.sam, args.output, args.opset)
        error = check_onnx_decoder(encoder.sam, path)
    except PerovssError as exc:
        print(f"error: {exc}")
        return 1
    print(f"wrote {path} ({encoder.model_id}); onnxruntime vs PyTorch max |diff| {error:.1e}")
    print(f"TensorRT: trtexec --onnx={path} --saveEngine={Path(path).with_suffix('.engine')} "
          f"{trtexec_shapes(encoder.sam)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
