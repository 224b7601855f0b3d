"""Concept store: the identity model is stored, used without refitting while its fit record holds,
fitted again when the record differs or the stored model is unusable, and never unpickled."""

from __future__ import annotations

import dataclasses
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from perovss_ros.core import decide, identity_store
from perovss_ros.core.appearance import CueCheck, describe_region
from perovss_ros.core.config import PipelineConfig
from perovss_ros.core.identity import IDENTITY_FIT_VERSION, IdentityFit, IdentityHead, IdentityModel
from perovss_ros.core.illuminant import shots_light
from perovss_ros.core.memory import ConceptMemory
from perovss_ros.core.pipeline import Pipeline
from perovss_ros.core.registry import build_backend
from tests.core.images import BLUE, RED, background, put_square

NAME = "my_red"


class CountingEncoder:
    """The backend's encoder, counting ``encode`` calls."""

    def __init__(self, encoder) -> None:
        self.inner, self.calls = encoder, 0
        self.model_id = encoder.model_id

    def encode(self, rgb):
        self.calls += 1
        return self.inner.encode(rgb)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def pipeline(store: Path, **extra) -> tuple[Pipeline, CountingEncoder]:
    """A classic pipeline on ``store`` (not loaded yet) and its counting encoder."""
    cfg = PipelineConfig(backend="classic", concept_store=str(store), **extra)
    name, encoder, decoder = build_backend(cfg)
    counting = CountingEncoder(encoder)
    return Pipeline(cfg, counting, decoder, name, ConceptMemory(store)), counting


def probe() -> np.ndarray:
    """The red square with its blue look-alike beside it."""
    img, _ = put_square(background(seed=3), 100, 70, 32, RED)
    img, _ = put_square(img, 20, 20, 32, BLUE)
    return img


@pytest.fixture(scope="module")
def taught(tmp_path_factory, red_shots) -> tuple[Path, Pipeline]:
    """A store holding ``my_red`` taught with the default identity (turned shots on), and its pipeline."""
    store = tmp_path_factory.mktemp("taught")
    pipe, _ = pipeline(store)
    pipe.teach(NAME, *red_shots)
    return store, pipe


@pytest.fixture
def store(taught, tmp_path) -> Path:
    """A copy of the taught store, for a test to change."""
    copy = tmp_path / "store"
    shutil.copytree(taught[0], copy)
    return copy


@pytest.fixture
def fit_calls(monkeypatch) -> list[int]:
    """Counts the calls of ``decide.fit_identity`` (still fitting)."""
    calls: list[int] = []
    real = decide.fit_identity

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(decide, "fit_identity", counted)
    return calls


def meta_of(store: Path) -> dict:
    return json.loads((store / NAME / "concept.json").read_text())


def write_meta(store: Path, meta: dict) -> None:
    (store / NAME / "concept.json").write_text(json.dumps(meta))


def rewrite_arrays(store: Path, change) -> None:
    """Rewrite the concept's npz after ``change(arrays dict)`` edits it."""
    path = store / NAME / meta_of(store)["arrays"]
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    change(arrays)
    np.savez(path, **arrays)


def test_stored_identity_round_trips_and_is_not_refitted(taught, store, monkeypatch):
    original = taught[1]._concepts[NAME]
    assert original.identity is not None and original.identity.cues is not None
    meta = meta_of(store)
    assert meta["identity_fit"] == {"version": IDENTITY_FIT_VERSION, "model_id": "classic-v1", "turned_shots": True,
                                    "turns": [90.0, 180.0, 270.0], "decoder": "grabcut-256px-3it"}

    def no_fit(*args, **kwargs):
        raise AssertionError("the stored identity model was fitted again")

    monkeypatch.setattr(decide, "fit_identity", no_fit)
    fresh, encoder = pipeline(store)
    assert fresh.load_store() == []
    assert encoder.calls == 0, "loading encoded the shots again"
    loaded = fresh._concepts[NAME]
    a, b = original.identity, loaded.identity
    assert torch.equal(a.head.weight, b.head.weight) and a.head.bias == b.head.bias
    assert (a.threshold, a.fg_low, a.bg_high) == (b.threshold, b.fg_low, b.bg_high)
    assert a.cues.accept == b.cues.accept
    assert np.array_equal(a.cues.scale, b.cues.scale) and np.array_equal(a.cues.weights, b.cues.weights)
    assert len(a.cues.references) == len(b.cues.references) > 0
    for ra, rb in zip(a.cues.references, b.cues.references, strict=True):
        assert np.array_equal(ra.colour, rb.colour) and np.array_equal(ra.pattern, rb.pattern)
        assert ra.cut == rb.cut
        for x, y in ((ra.outline, rb.outline), (ra.palette, rb.palette)):
            assert (x is None) == (y is None) and (x is None or np.array_equal(x, y))
    # The look-alikes seen at teach time are read back as they were written.
    assert len(a.cues.negatives) == len(b.cues.negatives)
    for ra, rb in zip(a.cues.negatives, b.cues.negatives, strict=True):
        assert np.array_equal(ra.colour, rb.colour) and np.array_equal(ra.pattern, rb.pattern)
    # The shots' silhouettes are rebuilt from the stored shots, the look-alikes' read back.
    for xs, ys in ((a.cues.silhouettes, b.cues.silhouettes), (a.cues.views, b.cues.views),
                   (a.cues.rivals, b.cues.rivals)):
        assert len(xs) == len(ys) and all(np.array_equal(x, y) for x, y in zip(xs, ys, strict=True))
    assert len(b.cues.silhouettes) == len(loaded.shots)
    # So is the shots' light, which a frame under another light is brought back to.
    assert a.cues.light is not None and np.allclose(a.cues.light, b.cues.light, atol=1e-6)
    assert loaded.identity_fit == original.identity_fit == fresh.identity_fit()
    frame = probe()
    original_mask = taught[1].process(frame).instance_mask
    assert original_mask.any()
    assert np.array_equal(fresh.process(frame).instance_mask, original_mask)
    taught[1].reset_tracking()


def test_missing_outline_and_palette_round_trip_as_none(red_shots):
    images, masks = red_shots
    refs = [describe_region(img, m) for img, m in zip(images, masks, strict=True)]
    refs[1] = dataclasses.replace(refs[1], outline=None, palette=None, cut=True)
    head = IdentityHead(weight=torch.randn(48), bias=-0.5)
    rivals = (np.eye(3, 5, dtype=bool), np.ones((4, 2), bool))
    negatives = (refs[2], dataclasses.replace(refs[0], outline=None))
    cues = CueCheck(references=tuple(refs), scale=np.array([0.1, 0.2, 0.3]), accept=4.5,
                    weights=np.array([1.0, 2.0, 1.0]), rivals=rivals, negatives=negatives)
    model = IdentityModel(head=head, threshold=0.5, fg_low=1.0, bg_high=0.1, cues=cues)
    block, arrays = identity_store.identity_arrays(model)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as data:
        back = identity_store.read_identity(json.loads(json.dumps(block)), data, 48,
                                            list(zip(images, masks, strict=True)))
    assert [r.shape for r in back.cues.rivals] == [(3, 5), (4, 2)]
    assert all(np.array_equal(x, y) for x, y in zip(back.cues.rivals, rivals, strict=True))
    assert len(back.cues.silhouettes) == len(back.cues.views) == len(masks)
    assert back.cues.silhouettes[0].sum() == masks[0].sum()
    assert back.cues.views[0].shape == (*back.cues.silhouettes[0].shape, 3)
    assert np.allclose(back.cues.light, shots_light(images), atol=1e-6)
    assert back.cues.references[1].outline is None and back.cues.references[1].palette is None
    assert back.cues.references[1].cut and not back.cues.references[0].cut
    assert np.array_equal(back.cues.references[0].outline, refs[0].outline)
    assert np.array_equal(back.cues.references[2].palette, refs[2].palette)
    # The look-alikes seen at teach time come back as they were, a missing outline as None.
    assert len(back.cues.negatives) == 2 and back.cues.negatives[1].outline is None
    for a, b in zip(back.cues.negatives, negatives, strict=True):
        assert np.array_equal(a.colour, b.colour) and np.array_equal(a.pattern, b.pattern) and a.cut == b.cut
    assert np.array_equal(back.cues.negatives[0].outline, refs[2].outline)
    # A store written before negatives were kept reads with none; a bad count is refused.
    older = {k: v for k, v in arrays.items() if not k.startswith(identity_store.NEGATIVE_PREFIX)}
    old_block = json.loads(json.dumps(block))
    del old_block["cues"]["negatives"]
    assert identity_store.read_identity(old_block, older, 48).cues.negatives == ()
    for bad in (-1, "2", True):
        old_block["cues"]["negatives"] = bad
        with pytest.raises(ValueError, match="negatives"):
            identity_store.read_identity(old_block, arrays, 48)
    old_block["cues"]["negatives"] = 3  # more than the arrays hold
    with pytest.raises(ValueError, match="identity_negative_colour"):
        identity_store.read_identity(old_block, arrays, 48)
    with np.load(io.BytesIO(buffer.getvalue()), allow_pickle=False) as data, pytest.raises(ValueError, match="shape"):
        identity_store.read_identity(block, data, 47)  # a head that does not fit the feature size


def test_every_part_of_the_identity_model_is_stored():
    # A field added to IdentityModel, IdentityHead, CueCheck or RegionDescriptor must be written and
    # read by core/identity_store.py (and IDENTITY_FIT_VERSION bumped), else a loaded model differs.
    assert identity_store.unstored_fields() == []


def test_a_model_with_unstored_parts_is_saved_without_it(store, monkeypatch, fit_calls, caplog):
    pipe, _ = pipeline(store)
    pipe.load_store()
    with monkeypatch.context() as patch:
        patch.setitem(identity_store.STORED_FIELDS, CueCheck, frozenset({"references", "scale", "accept"}))
        pipe.teach(NAME, *pipe_shots(pipe), replace=True)
    assert "saved without its identity model" in caplog.text and "CueCheck.weights" in caplog.text
    assert "identity" not in meta_of(store) and "identity_fit" not in meta_of(store)
    fitted = len(fit_calls)
    again, _ = pipeline(store)
    warnings = again.load_store()
    assert len(fit_calls) == fitted + 1 and "no identity model is stored" in warnings[0]


def pipe_shots(pipe: Pipeline) -> tuple[list[np.ndarray], list[np.ndarray]]:
    shots = pipe._concepts[NAME].shots
    return [s.image for s in shots], [s.mask for s in shots]


@pytest.mark.parametrize("change", ["turned_shots", "version", "model", "decode_size", "unrecorded decoder",
                                    "older store"])
def test_load_store_refits_when_the_fit_record_differs(store, fit_calls, change):
    extra = {}
    meta = meta_of(store)
    if change == "turned_shots":
        extra = {"turned_shots": False}
    elif change == "decode_size":  # the GrabCut crop its region check was calibrated on
        extra = {"decode_size": 128}
    elif change == "unrecorded decoder":  # written before the record had the decoder
        del meta["identity_fit"]["decoder"]
    elif change == "version":
        meta["identity_fit"]["version"] = IDENTITY_FIT_VERSION - 1
    elif change == "model":
        meta["identity_fit"]["model_id"] = "sam-vit_b-ec2df627"
    else:  # written before identity models were stored
        del meta["identity"], meta["identity_fit"]
    write_meta(store, meta)
    pipe, encoder = pipeline(store, **extra)
    warnings = pipe.load_store()
    assert len(fit_calls) == 1 and encoder.calls > 0
    assert len(warnings) == 1 and NAME in warnings[0] and "identity model again" in warnings[0], warnings
    expected = {"turned_shots": "turned shots 90°/180°/270° when fitted, off now",
                "version": f"fit version {IDENTITY_FIT_VERSION - 1} when fitted",
                "model": "fitted for model sam-vit_b-ec2df627",
                "decode_size": "decoder grabcut-256px-3it when fitted, grabcut-128px-3it now",
                "unrecorded decoder": "decoder unrecorded when fitted, grabcut-256px-3it now",
                "older store": "no identity model is stored"}[change]
    assert expected in warnings[0]
    assert pipe._concepts[NAME].identity is not None
    # saved again with this pipeline's record: the next start uses it as it is
    assert IdentityFit.from_json(meta_of(store)["identity_fit"]) == pipe.identity_fit()
    again, encoder = pipeline(store, **extra)
    assert again.load_store() == [] and len(fit_calls) == 1 and encoder.calls == 0


def test_pipeline_without_identity_leaves_the_stored_model_alone(store, fit_calls):
    before = meta_of(store)
    pipe, encoder = pipeline(store, identity=False)
    assert pipe.load_store() == [] and not fit_calls and encoder.calls == 0
    concept = pipe._concepts[NAME]
    assert concept.identity is None
    assert pipe.concepts()[0].presence_threshold == pytest.approx(concept.presence_threshold)
    assert meta_of(store) == before
    again, _ = pipeline(store)
    assert again.load_store() == [] and again._concepts[NAME].identity is not None and not fit_calls


def _head_too_short(arrays: dict) -> None:
    arrays["identity_head"] = arrays["identity_head"][:-1]


def _scale_nan(arrays: dict) -> None:
    arrays["identity_cue_scale"] = np.full(3, np.nan)


def _no_colours(arrays: dict) -> None:
    del arrays["identity_colour"]


def _flags_of_other_length(arrays: dict) -> None:
    arrays["identity_has_outline"] = np.ones(1, np.uint8)


def _palette_of_other_size(arrays: dict) -> None:
    arrays["identity_palette"] = arrays["identity_palette"][:, :-1]


def _rival_pixels_short(arrays: dict) -> None:
    arrays["identity_rival_shapes"] = np.array([[3, 4]], np.int64)
    arrays["identity_rival_pixels"] = np.ones(11, np.uint8)


@pytest.mark.parametrize("corrupt", [_head_too_short, _scale_nan, _no_colours, _flags_of_other_length,
                                     _palette_of_other_size, _rival_pixels_short])
def test_unusable_stored_identity_is_fitted_again(store, fit_calls, corrupt, caplog):
    rewrite_arrays(store, corrupt)
    pipe, _ = pipeline(store)
    warnings = pipe.load_store()
    assert len(fit_calls) == 1
    assert len(warnings) == 1 and "its stored identity model cannot be used" in warnings[0], warnings
    assert "cannot be used" in caplog.text  # the store says what is wrong with it
    assert pipe._concepts[NAME].identity is not None
    assert pipe.process(probe()).instance_mask.any()


def test_broken_identity_block_is_fitted_again(store, fit_calls):
    meta = meta_of(store)
    meta["identity"]["threshold"] = float("nan")
    write_meta(store, meta)
    pipe, _ = pipeline(store)
    warnings = pipe.load_store()
    assert len(fit_calls) == 1 and "cannot be used" in warnings[0]
    meta = meta_of(store)
    meta["identity_fit"] = {"version": "one"}
    write_meta(store, meta)
    pipe, _ = pipeline(store)
    warnings = pipe.load_store()
    assert len(fit_calls) == 2 and "no fit record" in warnings[0]


def test_truncated_arrays_skip_the_concept_with_a_warning(store, red_shots, blue_shots):
    pipe, _ = pipeline(store)
    pipe.load_store()
    pipe.teach("my_blue", *blue_shots)
    path = store / NAME / meta_of(store)["arrays"]
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    fresh, _ = pipeline(store)
    warnings = fresh.load_store()
    assert [c.name for c in fresh.concepts()] == ["my_blue"]
    assert len(warnings) == 1 and "skipped concept 'my_red'" in warnings[0], warnings


class Unpickled:
    """Records that it was unpickled: a stored array must never run this."""

    seen = False

    def __reduce__(self):
        return (_mark_unpickled, ())


def _mark_unpickled() -> Unpickled:
    Unpickled.seen = True
    return Unpickled()


def test_identity_arrays_are_never_unpickled(store, fit_calls):
    def pickled_head(arrays: dict) -> None:
        arrays["identity_head"] = np.array([Unpickled()], dtype=object)

    rewrite_arrays(store, pickled_head)
    Unpickled.seen = False
    pipe, _ = pipeline(store)
    warnings = pipe.load_store()
    assert not Unpickled.seen
    assert len(fit_calls) == 1 and "cannot be used" in warnings[0]
