"""PipelineConfig parsing and the backend registry."""

from __future__ import annotations

import importlib.util

import pytest

from perovss_ros.core import PipelineConfig, build_pipeline
from perovss_ros.core.errors import InvalidInputError
from perovss_ros.core.registry import BACKENDS, resolve_backend


def test_defaults_and_dict():
    cfg = PipelineConfig.coerce(None)
    assert (cfg.backend, cfg.model, cfg.device, cfg.presence, cfg.max_shots) == ("auto", "vit_b", "cpu", True, 32)
    cfg = PipelineConfig.coerce({"backend": "classic", "seed": 3, "concept_store": ""})
    assert cfg.backend == "classic" and cfg.seed == 3


def test_yaml_file(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("backend: classic\npresence: false\nconcept_store: ''\n")
    cfg = PipelineConfig.coerce(str(path))
    assert cfg.backend == "classic" and cfg.presence is False
    bad = tmp_path / "bad.yaml"
    bad.write_text("backend: [unclosed\n")
    with pytest.raises(InvalidInputError, match="YAML"):
        PipelineConfig.coerce(bad)


@pytest.mark.parametrize(
    ("values", "word"),
    [({"bakend": "classic"}, "bakend"), ({"backend": "gpu"}, "backend"), ({"model": "vit_z"}, "model"),
     ({"seed": "zero"}, "seed"), ({"presence": "yes"}, "presence"), ({"max_shots": 0}, "max_shots"),
     ({"light_correction": 1}, "light_correction")],
)
def test_bad_keys_and_values_are_named(values, word):
    with pytest.raises(InvalidInputError, match=word):
        PipelineConfig.coerce(values)


def test_auto_falls_back_to_classic_without_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setenv("PEROVSS_MODEL_DIR", str(tmp_path))
    cfg = PipelineConfig.coerce({"backend": "auto", "model": "vit_b", "checkpoint": "", "concept_store": ""})
    assert resolve_backend(cfg) == "classic"
    pipe = build_pipeline(cfg)
    assert pipe.backend_name == "classic"
    assert pipe.model_id == "classic-v1"


def test_registry_is_string_keyed():
    assert {"classic", "sam"} <= set(BACKENDS)


def test_runtime_is_accepted_by_config_and_checked_by_the_backend():
    cfg = PipelineConfig.coerce({"runtime": "onnxruntime", "concept_store": ""})
    assert cfg.runtime == "onnxruntime"
    with pytest.raises(InvalidInputError, match="runtime"):
        PipelineConfig.coerce({"runtime": "openvino"})
    # classic has no network to run elsewhere: it ignores the runtime
    assert build_pipeline({"backend": "classic", "runtime": "tensorrt", "concept_store": ""}).backend_name == "classic"


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None,
                    reason="TensorRT is installed here, so runtime tensorrt may be runnable")
def test_sam_backend_refuses_a_runtime_it_cannot_run():
    # The config accepts tensorrt (a robot may have it); without TensorRT the sam backend must
    # refuse it at build time with a message naming it and what does run, not fail on a frame.
    with pytest.raises(InvalidInputError, match="runtime 'tensorrt'") as refused:
        build_pipeline({"backend": "sam", "model": "tiny", "runtime": "tensorrt"})
    assert "torch" in str(refused.value)
