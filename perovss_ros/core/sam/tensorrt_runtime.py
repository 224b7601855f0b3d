"""TensorRT engines of the SAM graphs at run time: deserialise, check tensor names, run on CUDA tensors.

Tensors are bound by the names of :mod:`perovss_ros.core.sam.graph_names`
(``set_input_shape`` / ``set_tensor_address``) and the engine runs on torch's
current CUDA stream (``execute_async_v3``), so inputs and outputs stay torch
tensors on the GPU. The bytes come from
:func:`perovss_ros.core.sam.tensorrt_engines.engine_bytes`, which has already
checked them against their sidecar; an engine TensorRT still refuses is a
CheckpointError naming the rebuild command.
"""

from __future__ import annotations

import torch
from torch import Tensor

from perovss_ros.core.errors import CheckpointError
from perovss_ros.core.sam.graph_names import ENCODER_INPUT, ENCODER_OUTPUT, OUTPUT_NAMES, input_names
from perovss_ros.core.sam.tensorrt_engines import require_tensorrt


class TensorRtEngine:
    """One deserialised engine with the expected input and output names, runnable by name.

    ``label`` names it in errors, ``rebuild`` is the command that builds it again.
    """

    runtime = "tensorrt"

    def __init__(self, engine: bytes, inputs: tuple[str, ...], outputs: tuple[str, ...], label: str,
                 rebuild: str) -> None:
        trt = require_tensorrt()
        self.label = label
        self.inputs, self.outputs = inputs, outputs
        self._runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = self._runtime.deserialize_cuda_engine(engine)
        if self.engine is None:
            raise CheckpointError(f"TensorRT {trt.__version__} cannot load the engine {label} (built for another "
                                  f"TensorRT or GPU, or damaged); rebuild it with `{rebuild}`")
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        found_in = sorted(n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT)
        found_out = sorted(n for n in names if n not in found_in)
        if found_in != sorted(inputs) or found_out != sorted(outputs):
            raise CheckpointError(f"TensorRT engine {label} has inputs {found_in} and outputs {found_out}; expected "
                                  f"{list(inputs)} -> {list(outputs)}; rebuild it with `{rebuild}`")
        self.context = self.engine.create_execution_context()

    def run(self, feed: dict[str, Tensor]) -> dict[str, Tensor]:
        """Named float32 tensors in (moved to CUDA) → named float32 CUDA tensors out, on the current stream."""
        bound = {name: feed[name].to("cuda", torch.float32).contiguous() for name in self.inputs}
        for name, tensor in bound.items():
            self.context.set_input_shape(name, tuple(tensor.shape))
            self.context.set_tensor_address(name, tensor.data_ptr())
        out = {}
        for name in self.outputs:
            out[name] = torch.empty(tuple(self.context.get_tensor_shape(name)), dtype=torch.float32, device="cuda")
            self.context.set_tensor_address(name, out[name].data_ptr())
        if not self.context.execute_async_v3(torch.cuda.current_stream().cuda_stream):
            raise CheckpointError(f"TensorRT engine {self.label} failed to run")
        return out


class TensorRtEncoder(TensorRtEngine):
    """An image-encoder engine: ``1×3×S×S`` preprocessed image → ``1×256×S/16×S/16`` embedding."""

    def __init__(self, engine: bytes, label: str, rebuild: str) -> None:
        super().__init__(engine, (ENCODER_INPUT,), (ENCODER_OUTPUT,), label, rebuild)

    def run_tensor(self, image: Tensor) -> Tensor:
        """``1×3×S×S`` float32 (``Sam.preprocess`` output) → the embedding, float32 on CUDA."""
        return self.run({ENCODER_INPUT: image})[ENCODER_OUTPUT]


class TensorRtDecoder(TensorRtEngine):
    """A guided-decoder engine: the inputs of ``graph_names.input_names(guided=True)`` → ``OUTPUT_NAMES``."""

    def __init__(self, engine: bytes, label: str, rebuild: str) -> None:
        super().__init__(engine, input_names(True), OUTPUT_NAMES, label, rebuild)
        # The profile's largest K (``perovss engines build --max-sets``); more sets run in chunks.
        self.max_sets = int(self.engine.get_tensor_profile_shape("point_coords", 0)[2][0])

    def run_tensors(self, feed: dict[str, Tensor]) -> dict[str, Tensor]:
        """Named tensors in → ``iou_predictions`` ``B×4`` and ``low_res_masks`` ``B×4×4h×4w`` on CUDA.

        More than ``max_sets`` prompt sets run as several calls (every input but
        the shared ``image_embeddings`` is per set).
        """
        count = int(feed["point_coords"].shape[0])
        if count <= self.max_sets:
            return self.run(feed)
        parts = []
        for start in range(0, count, self.max_sets):
            rows = slice(start, start + self.max_sets)
            parts.append(self.run({name: value if name == "image_embeddings" else value[rows]
                                   for name, value in feed.items()}))
        return {name: torch.cat([part[name] for part in parts]) for name in self.outputs}
