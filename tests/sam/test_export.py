"""``perovss export``: each graph written, checked in onnxruntime against torch, named by the shared constants."""

from __future__ import annotations

import ast
import pathlib

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

import perovss_ros.core.sam as sam_package
from perovss_ros.cli import main
from perovss_ros.core.errors import CheckpointError, InvalidInputError
from perovss_ros.core.sam import build_sam_backend
from perovss_ros.core.sam.decoder_graph import DecoderGraph, example_inputs
from perovss_ros.core.sam.export import (
    check_encoder_onnx,
    decoder_trtexec_shapes,
    encoder_trtexec_shapes,
    export_model,
)
from perovss_ros.core.sam.graph_names import (
    ENCODER_INPUT,
    ENCODER_OUTPUT,
    GUIDANCE_INPUT_NAMES,
    INPUT_NAMES,
    OUTPUT_NAMES,
)


def _names(path: pathlib.Path) -> tuple[list[str], list[str]]:
    model = onnx.load(str(path), load_external_data=False)
    return [i.name for i in model.graph.input], [o.name for o in model.graph.output]


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory):
    out = tmp_path_factory.mktemp("export")
    return out, export_model("tiny", out)


def test_tiny_encoder_and_guided_decoder_are_written_and_checked(tiny_export) -> None:
    out, graphs = tiny_export
    by_part = {g.part: g for g in graphs}
    assert set(by_part) == {"encoder", "decoder"}
    assert by_part["encoder"].path == out / "sam-tiny-seed0.encoder.onnx"
    assert _names(by_part["encoder"].path) == ([ENCODER_INPUT], [ENCODER_OUTPUT])
    assert _names(by_part["decoder"].path) == (list(INPUT_NAMES + GUIDANCE_INPUT_NAMES), list(OUTPUT_NAMES))
    for graph in graphs:
        assert 0 <= graph.max_abs_diff <= 1e-4


def test_tiny_encoder_graph_equals_the_backend_encoder(tiny_export) -> None:
    _, graphs = tiny_export
    encoder, _ = build_sam_backend({"model": "tiny", "seed": 0})
    image = torch.from_numpy(np.random.default_rng(5).uniform(0, 255, (1, 3, 512, 384)).astype(np.float32))
    want = encoder.encode_tensor(image).numpy()
    session = onnxruntime.InferenceSession(str(graphs[0].path), providers=["CPUExecutionProvider"])
    (got,) = session.run([ENCODER_OUTPUT], {ENCODER_INPUT: encoder.sam.preprocess(image).numpy()})
    assert got.shape == (1, 256, 32, 32)
    assert np.abs(got - want).max() <= 1e-4


def test_guided_decoder_graph_with_guidance_off_is_vanilla_sam_at_any_k(tiny_export) -> None:
    _, graphs = tiny_export
    encoder, _ = build_sam_backend({"model": "tiny", "seed": 0})
    session = onnxruntime.InferenceSession(str(graphs[1].path), providers=["CPUExecutionProvider"])
    for sets, points in ((1, 1), (5, 2), (8, 6)):
        plain = example_inputs(encoder.sam, sets, points, guided=False)
        with torch.inference_mode():
            iou_want, masks_want = DecoderGraph(encoder.sam)(*plain)
        feed = {name: t.numpy() for name, t in zip(INPUT_NAMES, plain, strict=True)}
        feed.update(attention_bias=np.random.default_rng(0).normal(size=(sets, 32 * 32)).astype(np.float32),
                    bias_on=np.zeros(sets, np.float32), target_embedding=np.zeros((sets, 256), np.float32))
        iou, masks = session.run(list(OUTPUT_NAMES), feed)
        assert masks.shape == (sets, 4, 128, 128)
        assert np.abs(masks - masks_want.numpy()).max() <= 1e-4
        assert np.abs(iou - iou_want.numpy()).max() <= 1e-4


def test_a_graph_that_differs_from_torch_is_refused(tiny_export) -> None:
    _, graphs = tiny_export
    other, _ = build_sam_backend({"model": "tiny", "seed": 1})  # other weights than the graph's
    with pytest.raises(CheckpointError, match="differs from PyTorch"):
        check_encoder_onnx(other.sam, graphs[0].path)


def test_trtexec_shapes_cover_one_to_max_prompt_sets() -> None:
    encoder, _ = build_sam_backend({"model": "tiny", "seed": 0})
    assert encoder_trtexec_shapes(encoder.sam) == (
        "--minShapes=image:1x3x512x512 --optShapes=image:1x3x512x512 --maxShapes=image:1x3x512x512")
    flags = decoder_trtexec_shapes(encoder.sam, max_sets=8, max_points=6, guided=True).split()
    assert flags[0].startswith("--minShapes=image_embeddings:1x256x32x32,point_coords:1x1x2,")
    assert "point_coords:4x4x2" in flags[1] and "target_embedding:4x256" in flags[1]
    assert "point_coords:8x6x2" in flags[2] and "attention_bias:8x1024" in flags[2] and "bias_on:8" in flags[2]
    with pytest.raises(InvalidInputError):
        decoder_trtexec_shapes(encoder.sam, max_sets=0)


def test_unknown_part_is_refused(tmp_path) -> None:
    with pytest.raises(InvalidInputError, match="unknown export part"):
        export_model("tiny", tmp_path, parts=["clip"])
    assert not list(tmp_path.iterdir())


@pytest.mark.slow  # about 20 s on a shared 2-core CPU: a 1024 px TinyViT traced, exported and run twice
def test_mobile_encoder_with_random_weights_exports_within_1e4(tmp_path) -> None:
    graphs = export_model("mobile", tmp_path, random_weights=True, parts=["encoder"])
    (graph,) = graphs
    assert graph.path.name == "sam-mobile-random-seed0.encoder.onnx"
    assert _names(graph.path) == ([ENCODER_INPUT], [ENCODER_OUTPUT])
    assert graph.max_abs_diff <= 1e-4
    assert "image:1x3x1024x1024" in graph.trtexec_shapes


def test_cli_exports_and_reports(tmp_path, capsys) -> None:
    assert main(["export", "--model", "tiny", "--output-dir", str(tmp_path), "--parts", "decoder"]) == 0
    printed = capsys.readouterr().out
    assert "tiny decoder: wrote" in printed and "max |diff|" in printed
    assert f"trtexec --onnx={tmp_path / 'sam-tiny-seed0.decoder.onnx'}" in printed
    assert (tmp_path / "sam-tiny-seed0.decoder.onnx").is_file()


def test_cli_without_checkpoint_fails_naming_the_download(tmp_path, capsys) -> None:
    code = main(["export", "--model", "mobile", "--output-dir", str(tmp_path / "out"), "--checkpoint", str(tmp_path)])
    assert code == 1
    assert "perovss models download sam_mobile" in capsys.readouterr().err


def _sam_imports(path: pathlib.Path) -> set[str]:
    """Modules of perovss_ros.core.sam that ``path`` imports anywhere (top level or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("perovss_ros.core.sam."):
            found.add(node.module.rsplit(".", 1)[1])
    return found


def test_core_sam_has_no_import_cycle() -> None:
    root = pathlib.Path(sam_package.__file__).parent
    graph = {p.stem: _sam_imports(p) for p in root.glob("*.py") if p.stem != "__init__"}
    assert "backend" in graph["export"]  # the exporter builds on the backend ...
    state: dict[str, str] = {}

    def visit(module: str, trail: list[str]) -> None:
        if state.get(module) == "done":
            return
        assert state.get(module) != "open", f"import cycle: {' -> '.join([*trail, module])}"
        state[module] = "open"
        for dep in graph.get(module, ()):
            visit(dep, [*trail, module])
        state[module] = "done"

    for module in graph:
        visit(module, [])
    assert "export" not in {dep for deps in graph.values() for dep in deps}  # ... and nothing imports it
