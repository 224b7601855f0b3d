"""Open-vocabulary labels through the live node (its own process): teach infers the category,
generic segments come out, ~/set_vocabulary takes effect without a reload, ~/find takes a category.

The node labels with synthetic-clip, built once into the model directory when it is missing
(cached there; about 3 minutes on 2 free cores, the same build the labels accuracy test uses).
"""

from __future__ import annotations

import pytest
from action_msgs.msg import GoalStatus
from perovss_interfaces.srv import SetVocabulary, Teach

from perovss_ros.ros.image_conversion import mask_to_image, rgb_to_image
from perovss_ros.sim.scenes import make_scene
from tests.conftest import next_ros_domain_id
from tests.ros.helpers import RosHarness, node_cmd, start_perovss, stop
from tests.ros.test_node_process import Stream, _find, _wait_started

pytestmark = [pytest.mark.ros, pytest.mark.slow, pytest.mark.timeout(1800)]

VOCABULARY = ("mug", "ball", "box", "bottle", "book")


@pytest.fixture(scope="module")
def scene():
    return make_scene(seed=0, num_frames=6, size=(320, 240), num_objects=1, num_lookalikes=2)


@pytest.fixture(scope="module")
def labelling_node(tmp_path_factory):
    from perovss_ros.core.labels import synthetic_clip

    synthetic_clip.build()  # a no-op when cached
    domain = next_ros_domain_id()
    tmp = tmp_path_factory.mktemp("perovss_labels")
    log = tmp / "node.log"
    proc = start_perovss(domain, node_cmd(tmp / "concepts", "labels:=true", "label_every:=3",
                                          f"vocabulary:={','.join(VOCABULARY)}"), log)
    ros = RosHarness(domain)
    try:
        _wait_started(ros, proc, log)
        yield {"proc": proc, "ros": ros, "stream": Stream(ros), "log": log}
    finally:
        stop(proc)
        ros.close()


def test_labels_vocabulary_and_find_by_category_through_the_node(labelling_node, scene) -> None:
    ros, stream = labelling_node["ros"], labelling_node["stream"]
    obj = scene.objects[0]
    taught = ros.call(Teach, "/perovss/teach", Teach.Request(
        name=obj.name, images=[rgb_to_image(f) for f in scene.teach_frames],
        masks=[mask_to_image(g == obj.instance_id) for g in scene.teach_gt]))
    assert taught.success, taught.message
    # The scene's own category word, inferred from the three masked shots (no category given).
    assert taught.concept.category == obj.shape and "inferred" in taught.message

    out = stream.send(scene.frames[0])
    mine = [s for s in out.segments if s.personal]
    others = [s for s in out.segments if not s.personal]
    assert [(s.label, s.category) for s in mine] == [(obj.name, obj.shape)]
    assert others, "the node publishes generic segments beside the personal one"
    assert all(s.label in VOCABULARY and s.category == s.label and s.instance_id >= 32768 for s in others)

    word = others[0].label
    changed = ros.call(SetVocabulary, "/perovss/set_vocabulary", SetVocabulary.Request(labels=[word]))
    assert changed.success, changed.message
    after = [s for s in stream.send(scene.frames[0]).segments if not s.personal]
    # The same frame against one word: a region that took it among five keeps it (fewer rivals), nothing
    # else may carry a word that left the vocabulary; no reload happened.
    assert after and {s.label for s in after} == {word}
    assert labelling_node["proc"].poll() is None

    accepted, *_ = _find(ros, "zebra", 2.0)
    assert not accepted, "neither a concept nor a category"
    sending = stream.keep_sending([scene.frames[0]])
    try:
        accepted, status, result, _ = _find(ros, word, 20.0)
        mine_found = _find(ros, obj.name, 20.0)
    finally:
        sending.set()
    assert accepted and status == GoalStatus.STATUS_SUCCEEDED and result.found
    assert word in (result.segment.category, result.segment.label)
    assert mine_found[0] and mine_found[2].found and mine_found[2].segment.personal
    assert mine_found[2].segment.label == obj.name and mine_found[2].segment.category == obj.shape
