"""The TensorRT engine cache without TensorRT: key, sidecar checks, refusals naming the rebuild command."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest

from perovss_ros.cli import main
from perovss_ros.core.errors import CheckpointError
from perovss_ros.core.sam.engine_cache import (
    EngineKey,
    clear_engines,
    list_engines,
    load_engine,
    timing_cache_path,
    write_engine,
)
from perovss_ros.core.sam.shape_profiles import decoder_profile
from perovss_ros.core.sam.tensorrt_engines import engine_key, tensorrt_problem

FIELDS = {
    "model": "mobile",
    "model_id": "sam-mobile-6dbb9052",
    "part": "decoder",
    "onnx_sha256": "ab" * 32,
    "tensorrt_version": "10.3.0",
    "compute_capability": "8.7",
    "precision": "fp16",
    "shapes": {"point_coords": [[1, 1, 2], [4, 4, 2], [8, 8, 2]]},
}
REBUILD = "perovss engines build --model mobile --precision fp16"


def _key(**changes) -> EngineKey:
    return EngineKey(**{**FIELDS, **changes})


def test_key_digest_is_sha256_of_the_sorted_fields() -> None:
    text = ('{"compute_capability":"8.7","model":"mobile","model_id":"sam-mobile-6dbb9052","onnx_sha256":"'
            + "ab" * 32 + '","part":"decoder","precision":"fp16","shapes":{"point_coords":[[1,1,2],[4,4,2],[8,8,2]]},'
            '"tensorrt_version":"10.3.0"}')
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    assert _key().digest() == digest
    assert _key().file_name() == f"sam-mobile-6dbb9052.decoder.fp16.{digest}.engine"


@pytest.mark.parametrize("field, value", [
    ("onnx_sha256", "cd" * 32), ("tensorrt_version", "8.6.1"), ("compute_capability", "8.6"),
    ("precision", "fp32"), ("shapes", {"point_coords": [[1, 1, 2], [4, 4, 2], [16, 8, 2]]}),
])
def test_key_changes_with_each_field(field: str, value: object) -> None:
    assert _key(**{field: value}).digest() != _key().digest()
    assert _key(**{field: value}).file_name() != _key().file_name()


def test_engine_key_hashes_the_graph_and_records_the_profile() -> None:
    profile = decoder_profile((32, 32), 256, max_sets=8, max_points=6)
    key = engine_key("tiny", "sam-tiny-seed0", "decoder", b"graph bytes", "fp32", profile, "10.3.0", "8.7")
    assert key.onnx_sha256 == hashlib.sha256(b"graph bytes").hexdigest()
    assert key.shapes["point_coords"] == [[1, 1, 2], [4, 4, 2], [8, 6, 2]]
    assert key.shapes["attention_bias"] == [[1, 1024], [4, 1024], [8, 1024]]
    assert key.rebuild_command() == "perovss engines build --model tiny --precision fp32"


def test_stored_engine_loads_back(tmp_path) -> None:
    path = write_engine(_key(), b"serialized engine", tmp_path)
    assert path.name == _key().file_name()
    record = json.loads(path.with_suffix(".json").read_text())
    assert record["tensorrt_version"] == "10.3.0" and record["compute_capability"] == "8.7"
    assert record["engine_sha256"] == hashlib.sha256(b"serialized engine").hexdigest()
    assert load_engine(_key(), tmp_path) == b"serialized engine"


def test_empty_slot_is_none(tmp_path) -> None:
    assert load_engine(_key(), tmp_path) is None
    assert load_engine(_key(), tmp_path / "not made yet") is None


@pytest.mark.parametrize("field, theirs, label", [
    ("tensorrt_version", "8.6.1", "tensorrt_version '8.6.1' (here: '10.3.0')"),
    ("compute_capability", "7.5", "compute_capability '7.5' (here: '8.7')"),
])
def test_engine_for_another_tensorrt_or_gpu_is_refused_naming_the_rebuild(tmp_path, field, theirs, label) -> None:
    write_engine(_key(**{field: theirs}), b"built elsewhere", tmp_path)
    with pytest.raises(CheckpointError) as refused:
        load_engine(_key(), tmp_path)
    message = str(refused.value)
    assert label in message and REBUILD in message and "built for another setup" in message


def test_sidecar_naming_another_tensorrt_under_this_keys_name_is_refused(tmp_path) -> None:
    # A copied cache: the file name says this key, the sidecar says another TensorRT built it.
    path = write_engine(_key(), b"engine", tmp_path)
    record = json.loads(path.with_suffix(".json").read_text())
    path.with_suffix(".json").write_text(json.dumps({**record, "tensorrt_version": "8.5.3"}))
    with pytest.raises(CheckpointError) as refused:
        load_engine(_key(), tmp_path)
    assert "tensorrt_version '8.5.3'" in str(refused.value) and REBUILD in str(refused.value)


def test_corrupt_engine_is_refused_before_tensorrt_sees_it(tmp_path) -> None:
    path = write_engine(_key(), b"a complete serialized engine", tmp_path)
    path.write_bytes(b"a compl")  # truncated copy
    with pytest.raises(CheckpointError, match="corrupt") as refused:
        load_engine(_key(), tmp_path)
    assert REBUILD in str(refused.value)


def test_engine_without_sidecar_is_refused(tmp_path) -> None:
    path = write_engine(_key(), b"engine", tmp_path)
    path.with_suffix(".json").write_text("{not json")
    with pytest.raises(CheckpointError, match="no readable sidecar") as refused:
        load_engine(_key(), tmp_path)
    assert REBUILD in str(refused.value)


def test_rebuilding_a_slot_replaces_the_stale_engine(tmp_path) -> None:
    write_engine(_key(tensorrt_version="8.6.1"), b"old", tmp_path)
    write_engine(_key(), b"new", tmp_path)
    assert [path.name for path, _ in list_engines(tmp_path)] == [_key().file_name()]
    assert load_engine(_key(), tmp_path) == b"new"


def test_clear_removes_only_the_cache_files(tmp_path) -> None:
    write_engine(_key(), b"engine", tmp_path)
    write_engine(dataclasses.replace(_key(), part="encoder"), b"engine", tmp_path)
    timing_cache_path("10.3.0", "8.7", tmp_path).write_bytes(b"timings")
    (tmp_path / "notes.json").write_text("{}")
    assert clear_engines(tmp_path) == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.json"]


def test_cli_list_and_clear(tmp_path, capsys) -> None:
    assert main(["engines", "list", "--engine-dir", str(tmp_path)]) == 0
    assert "no TensorRT engines" in capsys.readouterr().out
    write_engine(_key(), b"x" * 2**20, tmp_path)
    assert main(["engines", "list", "--engine-dir", str(tmp_path)]) == 0
    listed = capsys.readouterr().out
    assert _key().file_name() in listed and "TensorRT 10.3.0" in listed and "1.0 MiB" in listed
    assert main(["engines", "clear", "--engine-dir", str(tmp_path)]) == 0
    assert "removed 2 file(s)" in capsys.readouterr().out


@pytest.mark.skipif(tensorrt_problem() is None, reason="TensorRT and CUDA are present here: build would run")
def test_cli_build_without_tensorrt_says_what_is_missing(tmp_path, capsys) -> None:
    assert main(["engines", "build", "--model", "tiny", "--engine-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert tensorrt_problem() in err and "CUDA" in err
    assert not list(tmp_path.iterdir())


def test_graph_for_the_key_is_exported_once_and_kept_beside_the_engines(tmp_path) -> None:
    from perovss_ros.core.sam import build_sam_backend
    from perovss_ros.core.sam.tensorrt_engines import onnx_graph

    encoder, _ = build_sam_backend({"model": "tiny", "seed": 0})
    graph = onnx_graph(encoder.sam, encoder.model_id, "decoder", tmp_path)
    (path,) = tmp_path.glob("sam-tiny-seed0.decoder.*.trt.onnx")
    assert path.read_bytes() == graph
    stamp = path.stat().st_mtime_ns
    assert onnx_graph(encoder.sam, encoder.model_id, "decoder", tmp_path) == graph
    assert path.stat().st_mtime_ns == stamp  # read back, not exported again
    assert clear_engines(tmp_path) == 1 and not path.exists()
