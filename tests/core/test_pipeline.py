"""The public pipeline API on the classic backend (hand-made images, expected masks drawn by hand)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from perovss_ros.core import build_pipeline
from perovss_ros.core.errors import InvalidInputError, UnknownConceptError
from tests.core.images import BLUE, RED, background, iou, put_square


def classic(**extra):
    return build_pipeline({"backend": "classic", "concept_store": "", **extra})


def frame_with(red_at=None, blue_at=None, seed=3):
    img = background(seed=seed)
    red = blue = None
    if red_at is not None:
        img, red = put_square(img, *red_at, 32, RED)
    if blue_at is not None:
        img, blue = put_square(img, *blue_at, 32, BLUE)
    return img, red, blue


def test_teach_and_find_among_lookalike(red_shots):
    pipe = classic()
    res = pipe.teach("my_red", *red_shots)
    assert res.concept.name == "my_red" and res.concept.num_shots == 3 and res.concept.instance_id == 1
    assert res.concept.model == "classic-v1" and not res.concept.fine_tuned
    assert 0.7 < res.self_iou <= 1.0
    img, red, _ = frame_with(red_at=(100, 70), blue_at=(20, 20))
    out = pipe.process(img)
    assert out.instance_mask.dtype == np.uint16 and out.instance_mask.shape == (120, 160)
    assert [s.label for s in out.segments] == ["my_red"]
    seg = out.segments[0]
    assert seg.personal and seg.instance_id == 1 and 0 <= seg.score <= 1
    assert iou(out.instance_mask == 1, red) > 0.75
    x0, y0, x1, y1 = seg.box_xyxy
    assert abs(x0 - 100) <= 3 and abs(y0 - 70) <= 3 and abs(x1 - 132) <= 3 and abs(y1 - 102) <= 3
    assert {"encode", "match", "decode", "total"} <= set(out.timings)
    assert set(out.presence) == {"my_red"}


def test_absent_object_yields_no_segment_unless_gate_is_off(red_shots):
    img, _, _ = frame_with(blue_at=(60, 40))
    gated = classic()
    gated.teach("my_red", *red_shots)
    out = gated.process(img)
    assert out.segments == [] and not out.instance_mask.any()
    assert out.presence["my_red"] < gated.concepts()[0].presence_threshold
    ungated = classic(presence=False)
    ungated.teach("my_red", *red_shots)
    assert [s.label for s in ungated.process(img).segments] == ["my_red"]


def test_teach_from_boxes(red_shots):
    images, masks = red_shots
    boxes = [(x0 - 2, y0 - 2, x0 + 34, y0 + 34) for x0, y0 in
             [(int(np.flatnonzero(m.any(0))[0]), int(np.flatnonzero(m.any(1))[0])) for m in masks]]
    pipe = classic()
    res = pipe.teach("boxed", images, boxes=boxes)
    assert res.concept.num_shots == 3 and res.self_iou > 0.7
    shots = pipe._concepts["boxed"].shots
    assert all(iou(s.mask, m) > 0.8 for s, m in zip(shots, masks, strict=True))


def test_single_box_is_followed_through_a_short_capture():
    frames, masks = [], []
    for i in range(4):  # the object drifts right by 6 px per frame
        img, mask = put_square(background(seed=40 + i), 40 + 6 * i, 40, 32, RED)
        frames.append(img)
        masks.append(mask)
    pipe = classic()
    res = pipe.teach("walker", frames, boxes=[(37, 37, 75, 75)])
    assert res.concept.num_shots == 4
    shots = pipe._concepts["walker"].shots
    assert all(iou(s.mask, m) > 0.75 for s, m in zip(shots, masks, strict=True))


def test_several_concepts_one_encode_batched_decode(red_shots, blue_shots):
    pipe = classic()
    pipe.teach("my_red", *red_shots)
    pipe.teach("my_blue", *blue_shots)
    encodes, decodes = [], []
    real_encode, real_decode = pipe.encoder.encode, pipe.decoder.decode

    def count_encode(rgb):
        encodes.append(1)
        return real_encode(rgb)

    def count_decode(features, rgb, prompts, guidance=None):
        decodes.append(len(prompts))
        return real_decode(features, rgb, prompts, guidance)

    pipe.encoder.encode, pipe.decoder.decode = count_encode, count_decode
    img, red, blue = frame_with(red_at=(20, 60), blue_at=(100, 20))
    out = pipe.process(img)
    assert encodes == [1]
    assert decodes and all(k == 2 for k in decodes)  # every cascade step decodes both concepts at once
    ids = {s.label: s.instance_id for s in out.segments}
    assert ids == {"my_red": 1, "my_blue": 2}
    assert iou(out.instance_mask == 1, red) > 0.75
    assert iou(out.instance_mask == 2, blue) > 0.75


def test_add_shots_replace_forget_and_stable_ids(red_shots, blue_shots):
    images, masks = red_shots
    pipe = classic(max_shots=4)
    pipe.teach("a", images[:2], masks[:2])
    pipe.teach("b", *blue_shots)
    res = pipe.teach("a", images[2:], masks[2:])
    assert res.concept.num_shots == 3 and res.concept.instance_id == 1
    with pytest.raises(InvalidInputError, match="max_shots"):
        pipe.teach("a", images[:2], masks[:2])
    res = pipe.teach("a", images[:1], masks[:1], replace=True)
    assert res.concept.num_shots == 1 and res.concept.instance_id == 1
    pipe.forget("a")
    assert [c.name for c in pipe.concepts()] == ["b"]
    with pytest.raises(UnknownConceptError):
        pipe.forget("a")
    assert pipe.teach("c", images[:1], masks[:1]).concept.instance_id == 3


def test_tracking_follows_and_resets(red_shots):
    pipe = classic()
    pipe.teach("my_red", *red_shots)
    for step in range(3):
        img, red, _ = frame_with(red_at=(30 + 8 * step, 40), seed=50 + step)
        out = pipe.process(img)
        assert iou(out.instance_mask == 1, red) > 0.75
    # Two identical copies of the object: a global search cannot tell them apart and takes neither
    # (identity's ambiguity rule); a track on one of them keeps the mask there. Whether the track
    # survives shows in whether the next frame segments that copy or nothing.
    twins, left = put_square(background(seed=70), 16, 44, 32, RED)
    twins, right = put_square(twins, 108, 44, 32, RED)
    pipe.reset_tracking()
    assert pipe.process(twins).segments == []  # searched globally: two equal candidates
    only_right, _ = put_square(background(seed=71), 108, 44, 32, RED)

    pipe.reset_tracking()
    pipe.process(only_right)
    held = pipe.process(twins).instance_mask == 1
    assert iou(held, right) > 0.75 and not (held & left).any()  # the track holds

    pipe.reset_tracking()
    pipe.process(only_right)
    pipe.reset_tracking()
    assert pipe.process(twins).segments == []  # reset: searched globally again

    # A frame without the object: the track coasts (track_coast_frames, 3 by default) and still holds
    # the copy where the object was; after it has coasted 3 frames the search is global again.
    pipe.reset_tracking()
    pipe.process(only_right)
    absent = pipe.process(background(seed=72))
    assert absent.segments == [] and not absent.instance_mask.any()
    held = pipe.process(twins).instance_mask == 1
    assert iou(held, right) > 0.75 and not (held & left).any()
    pipe.reset_tracking()
    pipe.process(only_right)
    for k in range(4):
        assert pipe.process(background(seed=72 + k)).segments == []
    assert pipe.process(twins).segments == []  # the fourth absent frame dropped the track
    # Without coasting, one absent frame drops it.
    strict = classic(track_coast_frames=0)
    strict.teach("my_red", *red_shots)
    strict.process(only_right)
    strict.process(background(seed=72))
    assert strict.process(twins).segments == []


@pytest.mark.parametrize(
    "bad_name", ["", "../x", "a/b", ".hidden", "-x", "x" * 65, "with space", "ü", None, 5]
)
def test_hostile_or_bad_names_are_rejected(bad_name, red_shots):
    pipe = classic()
    with pytest.raises(InvalidInputError):
        pipe.teach(bad_name, *red_shots)
    with pytest.raises(InvalidInputError):
        pipe.forget(bad_name)
    assert pipe.concepts() == []


def test_bad_inputs_are_clear_errors(red_shots):
    images, masks = red_shots
    pipe = classic(max_image_pixels=200 * 200)
    img = images[0]
    cases = [
        (dict(images=[img.astype(np.float32)], masks=masks[:1]), "uint8"),
        (dict(images=[img[..., :2]], masks=masks[:1]), "H×W×3"),
        (dict(images=[np.zeros((0, 0, 3), np.uint8)], masks=[np.zeros((0, 0), bool)]), "empty"),
        (dict(images=[np.zeros((300, 300, 3), np.uint8)], masks=[np.ones((300, 300), bool)]), "max_image_pixels"),
        (dict(images=[img], masks=[masks[0][:50]]), "image is"),
        (dict(images=[img], masks=[np.zeros_like(masks[0])]), "empty"),
        (dict(images=[img], masks=[masks[0].astype(np.float32)]), "bool"),
        (dict(images=[img], masks=masks[:1], boxes=[(0, 0, 10, 10)]), "not both"),
        (dict(images=[img]), "masks"),
        (dict(images=[], masks=[]), "at least one"),
        (dict(images=images[:2], masks=masks[:1]), "one each"),
        (dict(images=[img], boxes=[(50, 50, 40, 60)]), "box"),
        (dict(images=[img], boxes=[(0, 0, 1)]), "four"),
        (dict(images=[img], masks=masks[:1], fine_tune=True), "sam backend"),
    ]
    for kwargs, words in cases:
        with pytest.raises(InvalidInputError, match=words):
            pipe.teach("ok", **kwargs)
    with pytest.raises(InvalidInputError):
        pipe.process(np.zeros((120, 160), np.uint8))
    with pytest.raises(InvalidInputError):
        pipe.process(np.zeros((300, 300, 3), np.uint8))
    assert pipe.concepts() == []


def test_teach_while_processing_is_atomic(red_shots, blue_shots):
    pipe = classic()
    pipe.teach("my_red", *red_shots)
    img, _, _ = frame_with(red_at=(20, 60), blue_at=(100, 20))
    errors, seen = [], []
    stop = threading.Event()

    def worker():
        try:
            while not stop.is_set():
                out = pipe.process(img)
                seen.append(set(out.presence))
        except Exception as exc:  # any failure in the worker fails the test below
            errors.append(exc)

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        for _ in range(2):
            pipe.teach("my_blue", *blue_shots, replace=True)
            pipe.forget("my_blue")
        pipe.teach("my_blue", *blue_shots)
        while len(seen) < 2 or "my_blue" not in seen[-1]:
            assert thread.is_alive()
            threading.Event().wait(0.01)
    finally:
        stop.set()
        thread.join(timeout=30)
    assert errors == []
    assert all(s in ({"my_red"}, {"my_red", "my_blue"}) for s in seen)
    out = pipe.process(img)
    assert {s.label for s in out.segments} == {"my_red", "my_blue"}
