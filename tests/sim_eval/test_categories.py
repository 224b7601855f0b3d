"""Category ground truth of synthetic scenes: objects carry their shape word, clutter is static, the occluder none."""

from __future__ import annotations

import numpy as np
import pytest

from perovss_ros.cli import main
from perovss_ros.sim.bags import bag_scene_info, bag_topics
from perovss_ros.sim.scenes import make_scene

# The class table as the issue names it: the sprite shapes, then the static clutter; 0 = no class.
EXPECTED_TABLE = {1: "mug", 2: "ball", 3: "box", 4: "bottle", 5: "book", 6: "clutter"}
CLUTTER_ID = 6
SIZE = (160, 120)


@pytest.fixture(scope="module", params=["easy", "hard"])
def scene(request):
    return make_scene(seed=203, num_frames=24, size=SIZE, num_objects=2, difficulty=request.param)


def test_class_table(scene):
    assert scene.class_names == EXPECTED_TABLE
    assert len(scene.class_gt) == scene.num_frames and len(scene.teach_class_gt) == 3
    assert all(c.dtype == np.uint16 and c.shape == (SIZE[1], SIZE[0]) for c in scene.class_gt + scene.teach_class_gt)


def test_every_object_pixel_carries_its_shape_word(scene):
    word_id = {w: k for k, w in EXPECTED_TABLE.items()}
    for classes, objects in zip(scene.class_gt + scene.teach_class_gt, scene.object_gt + scene.teach_object_gt,
                                strict=True):
        for oid, obj in scene.object_ids.items():
            on = objects == oid
            assert np.all(classes[on] == word_id[obj.shape]), (oid, obj.shape)
        # Off the objects only clutter or nothing.
        assert set(np.unique(classes[objects == 0]).tolist()) <= {0, CLUTTER_ID}


def test_clutter_is_static_and_only_hidden_by_what_passes_in_front(scene):
    frames = scene.class_gt + scene.teach_class_gt
    clutter = [c == CLUTTER_ID for c in frames]
    static = np.logical_or.reduce(clutter)
    assert static.sum() > 0.01 * static.size  # 3 to 7 shapes are always drawn
    occluder_width = int(0.11 * SIZE[0]) + 2
    hidden_frames = 0
    for k, (seen, objects) in enumerate(zip(clutter, scene.object_gt + scene.teach_object_gt, strict=True)):
        hidden = static & ~seen & (objects == 0)  # not clutter here, and no object in front: the pole
        if hidden.any():
            hidden_frames += 1
            cols = np.nonzero(hidden.any(axis=0))[0]
            assert cols.max() - cols.min() < occluder_width, k
    assert hidden_frames >= 3  # in this scene the pole sweeps over clutter in several frames, hiding its class


def test_class_topic_in_the_bag_and_left_out_on_request(tmp_path):
    out = tmp_path / "bag"
    assert main(["sim", "--out", str(out), "--frames", "3", "--width", "64", "--height", "48"]) == 0
    assert bag_topics(out)["/perovss/class_ground_truth"][1] == 3
    assert bag_scene_info(out)["classes"] == {str(k): v for k, v in EXPECTED_TABLE.items()}
    bare = tmp_path / "bare"
    assert main(["sim", "--out", str(bare), "--frames", "3", "--width", "64", "--height", "48",
                 "--class-mask-topic", ""]) == 0
    assert "/perovss/class_ground_truth" not in bag_topics(bare)
