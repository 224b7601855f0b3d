"""Runtimes for the exported SAM graphs (ONNX Runtime for encoder and decoder, TensorRT), bound by name.

All take and return the tensors named in :mod:`perovss_ros.core.sam.graph_names`.
A file that is missing, corrupt, or built with other tensor names is a
CheckpointError saying how to rebuild it. TensorRT is optional: where it is not
importable, :class:`TensorRtDecoder` raises CheckpointError on construction.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from perovss_ros.core.errors import CheckpointError
from perovss_ros.core.sam.graph_names import ENCODER_INPUT, ENCODER_OUTPUT, INPUT_NAMES, OUTPUT_NAMES, input_names

REBUILD_HINT = "re-export it with `perovss export`"


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


class OnnxRuntimeEncoder:
    """An exported image encoder in ONNX Runtime: ``1×3×S×S`` preprocessed image → ``1×256×S/16×S/16``."""

    def __init__(self, source: str | os.PathLike | bytes, providers: list[str] | None = None,
                 threads: int = 0) -> None:
        self.source = "<in-memory graph>" if isinstance(source, bytes) else Path(source)
        self.session = onnxruntime_session("encoder", source, (ENCODER_INPUT,), (ENCODER_OUTPUT,), providers,
                                           threads)

    def run(self, image: np.ndarray) -> np.ndarray:
        """``1×3×S×S`` float32 (``Sam.preprocess`` output) → the embedding, float32."""
        (out,) = self.session.run([ENCODER_OUTPUT], {ENCODER_INPUT: np.ascontiguousarray(image, dtype=np.float32)})
        return out


class TensorRtDecoder:
    """A TensorRT engine built from the exported graph (``trtexec --onnx=... --saveEngine=...``).

    Shapes are set per call from the inputs, tensors are bound by name, and the
    engine runs on the current CUDA stream. Engines are specific to the GPU and
    TensorRT version that built them; a mismatch fails to deserialize and is
    reported as CheckpointError.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        try:
            import tensorrt as trt
        except ImportError:
            raise CheckpointError("TensorRT is not installed here; use runtime 'torch' or 'onnxruntime'") from None
        if not torch.cuda.is_available():
            raise CheckpointError("TensorRT needs a CUDA device; none is available")
        self.path = Path(path)
        if not self.path.is_file():
            raise CheckpointError(f"TensorRT engine {self.path} not found; build it with trtexec from the ONNX graph")
        self._trt = trt
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = runtime.deserialize_cuda_engine(self.path.read_bytes())
        if self.engine is None:
            raise CheckpointError(
                f"TensorRT engine {self.path} cannot be loaded (built for another GPU or TensorRT "
                f"{trt.__version__}?); rebuild it with trtexec from the ONNX graph"
            )
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        is_input = {n: self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT for n in names}
        _check_names("decoder", self.path, [n for n in names if is_input[n]], [n for n in names if not is_input[n]],
                     INPUT_NAMES, OUTPUT_NAMES)
        self.context = self.engine.create_execution_context()

    def run(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Named CUDA float32 tensors in → named CUDA tensors out (valid after the current stream syncs)."""
        bound = {name: inputs[name].to("cuda", torch.float32).contiguous() for name in INPUT_NAMES}
        for name, tensor in bound.items():
            self.context.set_input_shape(name, tuple(tensor.shape))
            self.context.set_tensor_address(name, tensor.data_ptr())
        outputs = {}
        for name in OUTPUT_NAMES:
            outputs[name] = torch.empty(tuple(self.context.get_tensor_shape(name)), dtype=torch.float32,
                                        device="cuda")
            self.context.set_tensor_address(name, outputs[name].data_ptr())
        if not self.context.execute_async_v3(torch.cuda.current_stream().cuda_stream):
            raise CheckpointError(f"TensorRT engine {self.path} failed to run")
        return outputs
