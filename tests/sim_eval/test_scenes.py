"""Synthetic scenes: deterministic, well-formed, with the promised difficulties."""

from __future__ import annotations

import numpy as np
import pytest

from perovss_ros.core.errors import InvalidInputError, UnknownConceptError
from perovss_ros.sim.scenes import make_scene, mask_box


@pytest.fixture(scope="module")
def scene():
    return make_scene(seed=5, num_frames=40, size=(160, 120), num_objects=2, num_lookalikes=2)


def test_shapes_and_dtypes(scene):
    assert scene.num_frames == 40 and len(scene.gt) == 40
    assert scene.size == (160, 120)
    for frame, gt in zip(scene.frames + scene.teach_frames, scene.gt + scene.teach_gt, strict=True):
        assert frame.shape == (120, 160, 3) and frame.dtype == np.uint8
        assert gt.shape == (120, 160) and gt.dtype == np.uint16
    assert len(scene.teach_frames) == 3 and len(scene.teach_gt) == 3
    ids = {int(v) for g in scene.gt for v in np.unique(g)}
    assert ids <= {0, 1, 2} and {1, 2} <= ids


def test_objects_and_lookalikes(scene):
    assert [o.instance_id for o in scene.objects] == [1, 2]
    assert scene.objects[0].name == "my_mug"
    assert len({o.name for o in scene.objects}) == 2
    kinds = {o.kind for o in scene.lookalikes}
    assert kinds == {"same_shape", "same_colour"}
    for look in scene.lookalikes:
        target = scene.object(look.mimics)
        assert look.instance_id == 0
        assert look.pattern != target.pattern
        if look.kind == "same_shape":
            assert look.shape == target.shape and look.color != target.color
        else:
            assert look.color == target.color and look.shape != target.shape


def test_deterministic_per_seed():
    a = make_scene(seed=11, num_frames=6, size=(96, 72))
    b = make_scene(seed=11, num_frames=6, size=(96, 72))
    c = make_scene(seed=12, num_frames=6, size=(96, 72))
    assert all(np.array_equal(x, y) for x, y in zip(a.frames + a.teach_frames, b.frames + b.teach_frames,
                                                    strict=True))
    assert all(np.array_equal(x, y) for x, y in zip(a.gt, b.gt, strict=True))
    assert not np.array_equal(a.frames[0], c.frames[0])


def test_absent_intervals_match_presence(scene):
    for obj in scene.objects:
        start, end = scene.absent_intervals[obj.name]
        presence = scene.presence(obj.name)
        assert not presence[start:end].any()
        assert presence.sum() >= scene.num_frames // 2
        assert scene.present(0, obj.name) == bool((scene.gt[0] == obj.instance_id).any())


def test_object_moves_and_changes_scale(scene):
    areas, centres = [], []
    for i in range(scene.num_frames):
        m = scene.mask(i, "my_mug")
        if m.sum() > 0:
            ys, xs = np.nonzero(m)
            areas.append(m.sum())
            centres.append((xs.mean(), ys.mean()))
    centres = np.array(centres)
    assert np.ptp(centres[:, 0]) + np.ptp(centres[:, 1]) > 5
    assert max(areas) > 1.3 * min(areas)


def test_occlusion_is_partial_and_recorded():
    s = make_scene(seed=2, num_frames=60, size=(160, 120), num_objects=2, num_lookalikes=1)
    for obj in s.objects:
        frac = s.visible_fraction[obj.name]
        assert frac.shape == (60,)
        assert np.all((frac > 0) == s.presence(obj.name))
        assert np.all(frac <= 1.0 + 1e-6)
    fractions = np.concatenate(list(s.visible_fraction.values()))
    # The occluder sweeps the whole width, so some frame shows an object only in part.
    assert np.any((fractions > 0.05) & (fractions < 0.9))


def test_teach_frames_show_each_object_whole(scene):
    h, w = scene.teach_gt[0].shape
    for obj in scene.objects:
        masks = scene.teach_masks(obj.name)
        boxes = scene.teach_boxes(obj.name)
        assert len(boxes) == 3
        areas = [m.sum() for m in masks]
        assert min(areas) > 100
        for x0, y0, x1, y1 in boxes:
            assert x0 > 0 and y0 > 0 and x1 < w and y1 < h  # not cut by the border


def test_mask_box_is_tight():
    m = np.zeros((10, 12), bool)
    m[2:5, 3:7] = True
    assert mask_box(m) == (3.0, 2.0, 7.0, 5.0)
    assert mask_box(np.zeros((4, 4), bool)) is None


@pytest.mark.parametrize("kwargs", [
    {"num_objects": 0}, {"num_objects": 9}, {"num_lookalikes": -1}, {"num_frames": 0},
    {"size": (10, 10)}, {"seed": -3}, {"fps": 0.0}, {"num_frames": 10**6},
])
def test_bad_arguments(kwargs):
    with pytest.raises(InvalidInputError):
        make_scene(**{"num_frames": 2, **kwargs})


def test_unknown_object_name(scene):
    with pytest.raises(UnknownConceptError):
        scene.present(0, "your_mug")
