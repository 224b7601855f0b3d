"""A SAM image encoder as an exportable ONNX graph at its fixed input size.

Tensor names and shapes are in :mod:`perovss_ros.core.sam.graph_names`. Like
:mod:`perovss_ros.core.sam.decoder_graph` this imports nothing of the backend,
so runtimes can export in memory and the file exporter can build on the backend.
"""

from __future__ import annotations

import io
import os
import warnings

import numpy as np
import torch
from segment_anything.modeling import Sam
from torch import Tensor

from perovss_ros.core.sam.graph_names import ENCODER_INPUT, ENCODER_OUTPUT


def encoder_example_input(sam: Sam, seed: int = 0) -> Tensor:
    """A seeded ``1×3×S×S`` float32 input in the encoder's normalised range (S = the model's input size)."""
    size = int(sam.image_encoder.img_size)
    return torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(seed))


def export_encoder_onnx(sam: Sam, path: str | os.PathLike | io.BytesIO, opset: int = 17
                        ) -> str | os.PathLike | io.BytesIO:
    """Export ``sam.image_encoder`` to ONNX at ``path`` or into a buffer; the input size is fixed.

    The graph takes ``Sam.preprocess`` output (normalised, zero-padded
    ``1×3×S×S``), so resizing and normalising stay outside it, where they
    are cheap and shared by every runtime.
    """
    encoder = sam.image_encoder.eval()
    # The TorchScript exporter warns about itself (the dynamo exporter needs onnxscript, absent here)
    # and the tracer about Python-side shape arithmetic, which is constant at a fixed input size.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
        warnings.simplefilter("ignore", category=DeprecationWarning)
        torch.onnx.export(
            encoder, (encoder_example_input(sam).to(sam.device),), path if isinstance(path, io.BytesIO) else str(path),
            input_names=[ENCODER_INPUT], output_names=[ENCODER_OUTPUT], opset_version=opset,
            dynamo=False, do_constant_folding=True,
        )
    return path


def encoder_graph_error(sam: Sam, source: str | os.PathLike | bytes) -> float:
    """Max |ONNX − torch| of the encoder graph ``source`` (file or bytes) against ``sam`` on a fresh seeded input."""
    from perovss_ros.core.sam.engines import OnnxRuntimeEncoder

    image = encoder_example_input(sam, seed=1)  # not the tracing input
    with torch.inference_mode():
        want = sam.image_encoder.eval()(image.to(sam.device)).cpu().numpy()
    got = OnnxRuntimeEncoder(source).run(image.numpy())
    if got.shape != want.shape:
        return float("inf")
    return float(np.abs(got - want).max())
