"""The exported decoder graph: same numbers as the decoder, ONNX Runtime check, engines bound by name."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from perovss_ros.core.errors import CheckpointError
from perovss_ros.core.sam import build_sam_backend
from perovss_ros.core.sam.decoder_graph import DecoderGraph, export_decoder_onnx
from perovss_ros.core.sam.engines import OnnxRuntimeDecoder
from perovss_ros.core.sam.export import check_decoder_onnx
from perovss_ros.core.sam.graph_names import INPUT_NAMES, OUTPUT_NAMES
from perovss_ros.core.types import Prompts


@pytest.fixture(scope="module")
def backend():
    return build_sam_backend({"model": "tiny", "seed": 0})


@pytest.fixture(scope="module")
def exported(backend, tmp_path_factory):
    encoder, _ = backend
    return export_decoder_onnx(encoder.sam, tmp_path_factory.mktemp("onnx") / "decoder.onnx")


def _graph_inputs(decoder, feats, points: np.ndarray, labels: list[int]) -> dict[str, np.ndarray]:
    coords = decoder.transform.apply_coords(points, feats.image_hw)[None].astype(np.float32)
    return {
        "image_embeddings": feats.extra["sam_embedding"].numpy(),
        "point_coords": coords,
        "point_labels": np.array([labels], np.float32),
        "mask_input": np.zeros((1, 1, 128, 128), np.float32),
        "has_mask_input": np.zeros(1, np.float32),
    }


def test_graph_equals_decoder_with_box_as_labelled_points(backend) -> None:
    encoder, decoder = backend
    rgb = np.random.default_rng(1).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    feats = encoder.encode(rgb)
    out = decoder.decode(feats, rgb, [Prompts(np.array([[90, 60], [5, 5]], np.float32), np.array([1, 0]),
                                              box=(60, 30, 120, 90), multimask=True)])
    inputs = _graph_inputs(decoder, feats, np.array([[90, 60], [5, 5], [60, 30], [120, 90]], np.float32),
                           [1, 0, 2, 3])
    with torch.no_grad():
        iou, masks = DecoderGraph(encoder.sam)(*(torch.from_numpy(inputs[n]) for n in INPUT_NAMES))
    torch.testing.assert_close(masks[0, 1:], out.logits[0], atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(iou[0, 1:].numpy(), out.scores[0], atol=1e-5)


def test_onnx_export_has_named_dynamic_io_and_matches_torch(backend, exported) -> None:
    encoder, _ = backend
    model = onnx.load(str(exported))
    assert [i.name for i in model.graph.input] == list(INPUT_NAMES)
    assert [o.name for o in model.graph.output] == list(OUTPUT_NAMES)
    points = model.graph.input[1].type.tensor_type.shape.dim
    assert points[0].dim_param and points[1].dim_param  # prompt sets and points are dynamic
    assert check_decoder_onnx(encoder.sam, exported, num_sets=5, num_points=2) < 1e-4


def test_onnxruntime_decoder_runs_by_name(backend, exported) -> None:
    encoder, decoder = backend
    rgb = np.random.default_rng(2).integers(0, 255, (96, 128, 3), dtype=np.uint8)
    feats = encoder.encode(rgb)
    inputs = _graph_inputs(decoder, feats, np.array([[60, 40], [3, 3]], np.float32), [1, 0])
    got = OnnxRuntimeDecoder(exported).run(inputs)
    want = decoder.decode(feats, rgb, [Prompts(np.array([[60, 40], [3, 3]], np.float32), np.array([1, 0]),
                                               multimask=True)])
    # Without a box SAM adds one padding point: the graph's caller does the same.
    assert got["low_res_masks"].shape == (1, 4, 128, 128)
    pad = np.zeros((1, 1, 2), np.float32)
    padded = dict(inputs, point_coords=np.concatenate([inputs["point_coords"], pad], 1),
                  point_labels=np.array([[1, 0, -1]], np.float32))
    got = OnnxRuntimeDecoder(exported).run(padded)
    np.testing.assert_allclose(got["low_res_masks"][0, 1:], want.logits[0].numpy(), atol=1e-4)


def test_broken_or_foreign_graphs_are_checkpoint_errors(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        OnnxRuntimeDecoder(tmp_path / "missing.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a protobuf" * 20)
    with pytest.raises(CheckpointError, match="cannot be loaded"):
        OnnxRuntimeDecoder(junk)
    value = onnx.helper.make_tensor_value_info
    graph = onnx.helper.make_graph([onnx.helper.make_node("Identity", ["x"], ["y"])], "other",
                                   [value("x", onnx.TensorProto.FLOAT, [1])], [value("y", onnx.TensorProto.FLOAT, [1])])
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)])
    model.ir_version = 8  # readable by any onnxruntime of the last years
    other = tmp_path / "other.onnx"
    onnx.save(model, str(other))
    with pytest.raises(CheckpointError, match="expected"):
        OnnxRuntimeDecoder(other)
