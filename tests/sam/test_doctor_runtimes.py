"""``perovss doctor``'s runtime lines say what each runtime can run on this machine, and why not."""

from __future__ import annotations

import importlib.util

import torch

from perovss_ros.commands.doctor import _runtime_checks


def test_each_runtime_has_a_line_matching_this_machine() -> None:
    lines = {c.topic: c.value for c in _runtime_checks()}
    has_cuda = torch.cuda.is_available()
    assert lines["runtime torch"].startswith("sam on the CPU")
    assert ("not on CUDA (no CUDA device)" in lines["runtime torch"]) != has_cuda
    has_ort = importlib.util.find_spec("onnxruntime") is not None
    if has_ort:
        import onnxruntime

        assert lines["onnxruntime"].startswith(onnxruntime.__version__)
        assert ("on CUDA (CUDA provider)" in lines["onnxruntime"]) == (
            has_cuda and "CUDAExecutionProvider" in onnxruntime.get_available_providers())
    has_trt = importlib.util.find_spec("tensorrt") is not None
    assert lines["TensorRT"].startswith("not installed: runtime tensorrt is refused here") != has_trt
    # Without CUDA, auto on the CPU is onnxruntime where importable, torch otherwise.
    assert lines["runtime auto"].startswith(f"cpu -> {'onnxruntime' if has_ort else 'torch'}")
