"""`perovss eval --live`: the same scoring, through a running `perovss node` process."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest

from perovss_ros.cli import main
from perovss_ros.sim.bags import write_scene_bag
from perovss_ros.sim.scenes import make_scene
from tests.conftest import next_ros_domain_id

pytestmark = [pytest.mark.ros, pytest.mark.slow, pytest.mark.timeout(300)]

TOPIC = "/perovss_eval_test/image"
# A node name of its own: even if another test run shares the ROS domain, nobody else answers to it.
NODE = "perovss_evaltest"


@pytest.fixture
def node(tmp_path, monkeypatch):
    """A classic-backend node on a private domain taking images from TOPIC; this process joins the domain."""
    domain = str(next_ros_domain_id())
    monkeypatch.setenv("ROS_DOMAIN_ID", domain)
    log = tmp_path / "node.log"
    cmd = [sys.executable, "-m", "perovss_ros.cli", "node", "--ros-args", "-r", f"__node:={NODE}",
           "-p", "backend:=classic",
           "-p", f"concept_store:={tmp_path / 'store'}", "-r", f"image:={TOPIC}"]
    with open(log, "w") as handle:
        proc = subprocess.Popen(cmd, stdout=handle, stderr=subprocess.STDOUT)
    try:
        yield {"proc": proc, "log": log}
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def test_live_eval_through_the_node(node, tmp_path, capsys):
    scene = make_scene(seed=3, num_frames=5, size=(160, 120), num_objects=1, num_lookalikes=1)
    bag = tmp_path / "bag"
    write_scene_bag(scene, bag)
    out = tmp_path / "out"
    rc = main(["eval", str(bag), "--out", str(out), "--live", "--node", f"/{NODE}", "--live-topic", TOPIC,
               "--wait", "120", "--frame-timeout", "30", "--quiet"])
    assert rc == 0, f"{capsys.readouterr().err}\n--- node log ---\n{node['log'].read_text()}"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["meta"]["live"]["unanswered_frames"] == 0
    assert metrics["speed"]["frames"] == 5
    assert metrics["per_concept"]["my_mug"]["frames"] == 5
    assert metrics["overall"]["miou"] > 0.3  # the node found the mug, not just something
    assert (out / "contact_sheet.png").is_file()
    assert node["proc"].poll() is None  # the node kept running

    # The evaluation's concept is gone again, and a clash with a concept the node holds is refused.
    from perovss_interfaces.srv import Teach

    from perovss_ros.ros.client import PerovssClient
    from perovss_ros.ros.image_conversion import mask_to_image, rgb_to_image

    with PerovssClient(f"/{NODE}") as client:
        assert [c.name for c in client.concepts().concepts] == []
        taught = client.teach(Teach.Request(name="my_mug", images=[rgb_to_image(scene.teach_frames[0])],
                                            masks=[mask_to_image(scene.teach_masks("my_mug")[0])]), timeout=60)
        assert taught.success
    capsys.readouterr()
    assert main(["eval", str(bag), "--out", str(tmp_path / "o2"), "--live", "--node", f"/{NODE}",
                 "--live-topic", TOPIC, "--wait", "30", "--quiet"]) == 1
    assert "already has concept" in capsys.readouterr().err
