"""ONNX Runtime for the exported SAM graphs (encoder and decoder), bound by name.

All take and return the tensors named in :mod:`perovss_ros.core.sam.graph_names`.
A file that is missing, corrupt, or built with other tensor names is a
CheckpointError saying how to rebuild it. TensorRT engines run in
:mod:`perovss_ros.core.sam.tensorrt_runtime` with the same names and methods
(``run_tensor`` for encoders, ``run_tensors`` for decoders).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from perovss_ros.core.errors import CheckpointError
from perovss_ros.core.sam.graph_names import ENCODER_INPUT, ENCODER_OUTPUT, OUTPUT_NAMES, input_names

REBUILD_HINT = "re-export it with `perovss export`"
CUDA_PROVIDER = "CUDAExecutionProvider"
CPU_PROVIDER = "CPUExecutionProvider"


def onnxruntime_providers(device: torch.device) -> list[str] | None:
    """Execution providers for ``device``: CUDA then CPU on a CUDA device where onnxruntime has the
    CUDA provider, the CPU on a CPU; None when onnxruntime cannot run on ``device`` here."""
    import onnxruntime

    if device.type == "cpu":
        return [CPU_PROVIDER]
    return [CUDA_PROVIDER, CPU_PROVIDER] if CUDA_PROVIDER in onnxruntime.get_available_providers() else None


def _check_names(what: str, source: object, inputs: list[str], outputs: list[str], expected_inputs: tuple[str, ...],
                 expected_outputs: tuple[str, ...]) -> None:
    if sorted(inputs) != sorted(expected_inputs) or sorted(outputs) != sorted(expected_outputs):
        raise CheckpointError(
            f"{what} graph {source} has inputs {inputs} and outputs {outputs}; expected {list(expected_inputs)} "
            f"-> {list(expected_outputs)}; {REBUILD_HINT}"
        )


def onnxruntime_session(what: str, source: str | os.PathLike | bytes, expected_inputs: tuple[str, ...],
                        expected_outputs: tuple[str, ...], providers: list[str] | None = None, threads: int = 0):
    """An ``onnxruntime.InferenceSession`` of ``source`` (file or serialized graph) with the expected tensor names.

    ``threads`` bounds intra-op threads (0 = onnxruntime's default); worker
    threads do not spin, so a busy robot CPU is not made busier while a graph
    waits. A missing, unreadable or foreign graph is a CheckpointError.
    """
    import onnxruntime

    label = "<in-memory graph>" if isinstance(source, bytes) else Path(source)
    if isinstance(label, Path) and not label.is_file():
        raise CheckpointError(f"{what} graph {label} not found; {REBUILD_HINT}")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = max(0, int(threads))
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        session = onnxruntime.InferenceSession(
            source if isinstance(source, bytes) else str(source), options,
            providers=providers or ["CPUExecutionProvider"],
        )
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
        raise CheckpointError(f"{what} graph {label} cannot be loaded ({exc}); {REBUILD_HINT}") from None
    _check_names(what, label, [i.name for i in session.get_inputs()], [o.name for o in session.get_outputs()],
                 expected_inputs, expected_outputs)
    return session


class OnnxRuntimeDecoder:
    """The exported decoder in ONNX Runtime (CPU unless other providers are given).

    ``source`` is a file or the serialized graph (bytes); ``guided`` expects the
    variant with PerSAM's guidance inputs; ``threads`` as in :func:`onnxruntime_session`.
    """

    def __init__(self, source: str | os.PathLike | bytes, providers: list[str] | None = None,
                 guided: bool = False, threads: int = 0) -> None:
        self.source = "<in-memory graph>" if isinstance(source, bytes) else Path(source)
        self.input_names = input_names(guided)
        self.session = onnxruntime_session("decoder", source, self.input_names, OUTPUT_NAMES, providers, threads)

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Named float32 arrays in (the graph's input names) → named arrays out (``OUTPUT_NAMES``)."""
        feed = {name: np.ascontiguousarray(inputs[name], dtype=np.float32) for name in self.input_names}
        return dict(zip(OUTPUT_NAMES, self.session.run(list(OUTPUT_NAMES), feed), strict=True))

    def run_tensors(self, feed: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``run`` on named tensors (any device) → named CPU float32 tensors."""
        out = self.run({name: feed[name].detach().float().cpu().numpy() for name in self.input_names})
        return {name: torch.from_numpy(value) for name, value in out.items()}


class OnnxRuntimeEncoder:
    """An exported image encoder in ONNX Runtime: ``1×3×S×S`` preprocessed image → ``1×256×S/16×S/16``."""

    runtime = "onnxruntime"

    def __init__(self, source: str | os.PathLike | bytes, providers: list[str] | None = None,
                 threads: int = 0) -> None:
        self.source = "<in-memory graph>" if isinstance(source, bytes) else Path(source)
        self.session = onnxruntime_session("encoder", source, (ENCODER_INPUT,), (ENCODER_OUTPUT,), providers,
                                           threads)

    def run(self, image: np.ndarray) -> np.ndarray:
        """``1×3×S×S`` float32 (``Sam.preprocess`` output) → the embedding, float32."""
        (out,) = self.session.run([ENCODER_OUTPUT], {ENCODER_INPUT: np.ascontiguousarray(image, dtype=np.float32)})
        return out

    def run_tensor(self, image: torch.Tensor) -> torch.Tensor:
        """``run`` on a ``1×3×S×S`` tensor (any device) → the embedding as a CPU float32 tensor."""
        return torch.from_numpy(self.run(image.detach().float().cpu().numpy()))
