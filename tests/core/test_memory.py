"""Concept store: round trip, atomic writes under a simulated crash, hostile files, model ids."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from perovss_ros.core import build_pipeline, memory
from perovss_ros.core.concept import Concept, Shot
from perovss_ros.core.errors import ConceptStoreError, InvalidInputError
from perovss_ros.core.memory import ConceptMemory


def _concept(name: str = "mug", shots: int = 2, weights: bool = False) -> Concept:
    rng = np.random.default_rng(0)
    shot_list = [
        Shot(image=rng.integers(0, 255, (12, 16, 3), dtype=np.uint8), mask=rng.random((12, 16)) > 0.5)
        for _ in range(shots)
    ]
    local = [torch.randn(3 + i, 5) for i in range(shots)]
    return Concept(
        name=name, instance_id=4, model_id="classic-v1", created=123.5, shots=shot_list, local=local,
        targets=torch.nn.functional.normalize(torch.randn(shots, 5), dim=1), embedding=torch.randn(5),
        presence_threshold=0.625, scale_weights=torch.tensor([0.2, 0.3, 0.5]) if weights else None,
        calibration={"fg_low": 0.9, "bg_high": 0.35},
    )


def test_round_trip(tmp_path):
    store = ConceptMemory(tmp_path)
    original = _concept(weights=True)
    store.save(original)
    loaded = store.load("mug")
    assert (loaded.name, loaded.instance_id, loaded.model_id, loaded.created) == ("mug", 4, "classic-v1", 123.5)
    assert loaded.presence_threshold == pytest.approx(0.625)
    assert loaded.calibration == {"fg_low": 0.9, "bg_high": 0.35}
    assert torch.equal(loaded.targets, original.targets) and torch.equal(loaded.embedding, original.embedding)
    assert all(torch.equal(a, b) for a, b in zip(loaded.local, original.local, strict=True))
    assert torch.allclose(loaded.scale_weights, original.scale_weights)
    for a, b in zip(loaded.shots, original.shots, strict=True):
        assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask)
    assert store.names() == ["mug"]
    files = sorted(p.name for p in (tmp_path / "mug").iterdir())
    assert "concept.json" in files and not any(f.startswith(".tmp") for f in files)


def test_crash_while_writing_keeps_previous_version(tmp_path, monkeypatch):
    store = ConceptMemory(tmp_path)
    store.save(_concept(shots=1))
    real_replace = os.replace

    def crash_on_meta(src, dst):
        if str(dst).endswith("concept.json"):
            raise OSError("simulated power loss")
        return real_replace(src, dst)

    monkeypatch.setattr(memory.os, "replace", crash_on_meta)
    with pytest.raises(ConceptStoreError, match="cannot write"):
        store.save(_concept(shots=3))
    monkeypatch.setattr(memory.os, "replace", real_replace)
    assert store.load("mug").num_shots == 1
    # the half-written version's files do not break the next save either
    store.save(_concept(shots=2))
    assert store.load("mug").num_shots == 2
    assert len(list((tmp_path / "mug").glob("shot-*.png"))) == 2


def test_delete_and_hostile_names(tmp_path):
    store = ConceptMemory(tmp_path)
    store.save(_concept())
    store.delete("mug")
    assert store.names() == [] and not (tmp_path / "mug").exists()
    for bad in ("../escape", "a/b", "..", ""):
        with pytest.raises(InvalidInputError):
            store.folder(bad)


def test_malformed_files_are_store_errors(tmp_path):
    store = ConceptMemory(tmp_path)
    store.save(_concept())
    meta_path = tmp_path / "mug" / "concept.json"
    meta = json.loads(meta_path.read_text())
    meta["arrays"] = "../../outside.npz"
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ConceptStoreError, match="invalid file"):
        store.load("mug")
    # an npz holding a pickled object array is refused (allow_pickle=False)
    store.save(_concept())
    meta = json.loads(meta_path.read_text())
    np.savez(tmp_path / "mug" / meta["arrays"], targets=np.array([object()], dtype=object))
    with pytest.raises(ConceptStoreError):
        store.load("mug")
    meta_path.write_text("{not json")
    with pytest.raises(ConceptStoreError):
        store.load("mug")


def test_pipeline_persists_reloads_and_rederives(tmp_path, red_shots, blue_shots):
    cfg = {"backend": "classic", "concept_store": str(tmp_path)}
    first = build_pipeline(cfg)
    first.teach("my_red", *red_shots)
    first.teach("my_blue", *blue_shots)
    second = build_pipeline(cfg)
    assert [(c.name, c.instance_id, c.num_shots) for c in second.concepts()] == [
        ("my_red", 1, 3), ("my_blue", 2, 2)]
    assert second.store_warnings == []
    assert second.concepts()[0].presence_threshold == pytest.approx(first.concepts()[0].presence_threshold)
    # a concept made by another model is re-derived from its stored shots
    meta_path = tmp_path / "my_red" / "concept.json"
    meta = json.loads(meta_path.read_text())
    meta["model_id"] = "sam-vit_b-ec2df627"
    meta_path.write_text(json.dumps(meta))
    # and a broken concept is skipped with a warning, the others still load
    (tmp_path / "my_blue" / "concept.json").write_text("garbage")
    third = build_pipeline(cfg)
    assert [c.name for c in third.concepts()] == ["my_red"]
    assert any("re-derived" in w for w in third.store_warnings)
    assert any("my_blue" in w for w in third.store_warnings)
    assert json.loads(meta_path.read_text())["model_id"] == "classic-v1"
    third.forget("my_red")
    assert not (tmp_path / "my_red").exists()
    assert build_pipeline(cfg).concepts() == []


def test_pipeline_without_store_writes_nothing(tmp_path, monkeypatch, red_shots):
    # Every place a default could resolve to (home, XDG dirs, the working directory) is an empty
    # folder under tmp_path; teach, process and forget must leave all of them empty.
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    for folder in (home, cwd):
        folder.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for var in ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
        monkeypatch.setenv(var, str(home / var.lower()))
    monkeypatch.chdir(cwd)
    pipe = build_pipeline({"backend": "classic"})
    images, masks = red_shots
    pipe.teach("my_red", images, masks)
    result = pipe.process(images[0])
    assert [s.label for s in result.segments] == ["my_red"]
    assert [c.name for c in build_pipeline({"backend": "classic"}).concepts()] == []
    pipe.forget("my_red")
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == ["cwd", "home"]
