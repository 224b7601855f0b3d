"""The graph exporter: a model's image encoder and PerSAM-guided decoder to ONNX files, each checked.

Built on the backend (it loads models as the node does, verified checkpoints
included); nothing in the backend imports this module. Right after writing a
graph, onnxruntime runs it on fresh inputs against PyTorch and the largest
absolute difference is reported; above ``atol`` the export is an error.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from segment_anything.modeling import Sam

from perovss_ros.core.errors import CheckpointError, InvalidInputError
from perovss_ros.core.sam.backend import build_sam_backend
from perovss_ros.core.sam.decoder_graph import DecoderGraph, example_inputs, export_decoder_onnx
from perovss_ros.core.sam.encoder_graph import encoder_graph_error, export_encoder_onnx
from perovss_ros.core.sam.graph_names import OUTPUT_NAMES, input_names
from perovss_ros.core.sam.shape_profiles import decoder_profile, encoder_profile

PARTS = ("encoder", "decoder")
"""What ``export_model`` can write: the image encoder graph and the guided decoder graph."""
DEFAULT_ATOL = 1e-4


@dataclass(frozen=True)
class ExportedGraph:
    """One written graph: ``part`` (``encoder``/``decoder``), its file, ONNX-vs-torch max |diff|, trtexec flags."""

    part: str
    path: Path
    max_abs_diff: float
    trtexec_shapes: str

    def trtexec_command(self) -> str:
        """The ``trtexec`` line that builds a TensorRT engine of this graph next to it."""
        return f"trtexec --onnx={self.path} --saveEngine={self.path.with_suffix('.engine')} {self.trtexec_shapes}"


def _session(path: str | os.PathLike):
    import onnxruntime

    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _refuse_above(error: float, atol: float, what: str, path: str | os.PathLike) -> float:
    if not error <= atol:  # also catches NaN
        raise CheckpointError(f"exported {what} {path} differs from PyTorch by {error:.2e} (> {atol:.0e})")
    return error


def check_encoder_onnx(sam: Sam, path: str | os.PathLike, atol: float = DEFAULT_ATOL) -> float:
    """Max |ONNX − torch| of the encoder graph at ``path`` on a seeded input; CheckpointError above ``atol``."""
    return _refuse_above(encoder_graph_error(sam, path), atol, "encoder", path)


def check_decoder_onnx(sam: Sam, path: str | os.PathLike, num_sets: int = 3, num_points: int = 4,
                       atol: float = DEFAULT_ATOL, guided: bool = False) -> float:
    """Max |ONNX − torch| of the decoder graph at ``path`` on fresh shapes; CheckpointError above ``atol``.

    ``num_sets``/``num_points`` should differ from the tracing shapes (2 and 3),
    so that the dynamic axes are exercised.
    """
    inputs = example_inputs(sam, num_sets, num_points, guided)
    with torch.inference_mode():
        iou_ref, masks_ref = DecoderGraph(sam).eval()(*inputs)
    feed = {n: t.numpy() for n, t in zip(input_names(guided), inputs, strict=True)}
    iou, masks = _session(path).run(list(OUTPUT_NAMES), feed)
    error = float(max(np.abs(masks - masks_ref.numpy()).max(), np.abs(iou - iou_ref.numpy()).max()))
    return _refuse_above(error, atol, "decoder", path)


def encoder_trtexec_shapes(sam: Sam) -> str:
    """``trtexec`` min/opt/max shape flags of the encoder graph (one fixed shape)."""
    return encoder_profile(int(sam.image_encoder.img_size)).trtexec_flags()


def decoder_trtexec_shapes(sam: Sam, max_sets: int = 8, max_points: int = 8, guided: bool = False) -> str:
    """``trtexec`` min/opt/max shape flags of the decoder graph: 1 set of 1 point up to the given maxima.

    The same profile ``perovss engines build`` builds with (:mod:`perovss_ros.core.sam.shape_profiles`).
    """
    return decoder_profile(tuple(sam.prompt_encoder.image_embedding_size), int(sam.prompt_encoder.embed_dim),
                           max_sets, max_points, guided).trtexec_flags()


def export_model(model: str, output_dir: str | os.PathLike, checkpoint: str = "", seed: int = 0,
                 random_weights: bool = False, parts: Sequence[str] = PARTS, opset: int = 17,
                 atol: float = DEFAULT_ATOL, max_sets: int = 8, max_points: int = 8) -> list[ExportedGraph]:
    """Write ``<model id>.encoder.onnx`` and/or ``<model id>.decoder.onnx`` (guided) into ``output_dir``.

    The model loads as in the node (verified checkpoint; ``random_weights``
    builds the architecture with seeded random weights instead, and the file
    names say so). Each graph is checked in onnxruntime right after export.
    Raises InvalidInputError for an unknown part or model, CheckpointError for
    a missing checkpoint or a graph that differs from PyTorch by more than ``atol``.
    """
    unknown = [p for p in parts if p not in PARTS]
    if unknown or not parts:
        raise InvalidInputError(f"unknown export part(s) {unknown or list(parts)}; choose from: {', '.join(PARTS)}")
    encoder, _ = build_sam_backend({"model": model, "checkpoint": checkpoint, "seed": seed},
                                   random_weights=random_weights)
    sam = encoder.sam
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    if "encoder" in parts:
        path = Path(export_encoder_onnx(sam, out / f"{encoder.model_id}.encoder.onnx", opset))
        written.append(ExportedGraph("encoder", path, check_encoder_onnx(sam, path, atol),
                                     encoder_trtexec_shapes(sam)))
    if "decoder" in parts:
        path = Path(export_decoder_onnx(sam, out / f"{encoder.model_id}.decoder.onnx", opset, guided=True))
        written.append(ExportedGraph("decoder", path, check_decoder_onnx(sam, path, atol=atol, guided=True),
                                     decoder_trtexec_shapes(sam, max_sets, max_points, guided=True)))
    return written
