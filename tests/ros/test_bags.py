"""`perovss record` then `perovss replay`: a round trip through a real bag, between real processes."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from perovss_interfaces.msg import Segment, Segmentation
from rosbags.rosbag2 import Reader
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from perovss_ros.ros.bags import typestore_for
from perovss_ros.ros.image_conversion import image_to_rgb, rgb_to_image
from tests.ros.helpers import RosHarness, reliable, start_perovss, stop, wait_for

pytestmark = [pytest.mark.ros, pytest.mark.slow]

N = 5


def _frames() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    return [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(N)]


def _image(rgb: np.ndarray, i: int) -> Image:
    msg = rgb_to_image(rgb, Header(frame_id="cam"))
    msg.header.stamp.sec = 100 + i
    return msg


def test_record_then_replay_round_trip(ros_domain_id: int, tmp_path: Path) -> None:
    bag = tmp_path / "bag"
    frames = _frames()
    ros = RosHarness(ros_domain_id)
    recorder = replayer = looper = None
    try:
        cam = ros.node.create_publisher(Image, "/cam", reliable())
        seg = ros.node.create_publisher(Segmentation, "/seg", reliable())
        recorder = start_perovss(ros_domain_id, ["record", str(bag), "/cam", "seg", "--duration", "8",
                                                 "--wait", "30"], tmp_path / "record.log")

        def listening() -> bool:
            return ros.node.count_subscribers("/cam") > 0 and ros.node.count_subscribers("/seg") > 0

        assert wait_for(lambda: listening() or recorder.poll() is not None, 60), (tmp_path / "record.log").read_text()
        # Publish the same messages in rounds until the recorder stops: discovery may lose the first ones.
        while recorder.poll() is None:
            seg.publish(Segmentation(header=Header(frame_id="cam"),
                                     segments=[Segment(label="my_mug", instance_id=3)]))
            for i, rgb in enumerate(frames):
                cam.publish(_image(rgb, i))
                time.sleep(0.05)
            time.sleep(0.2)
        assert recorder.returncode == 0, (tmp_path / "record.log").read_text()

        # The bag is a plain rosbag2: another reader deserializes every message.
        store = typestore_for(["sensor_msgs/msg/Image", "perovss_interfaces/msg/Segmentation"])
        with Reader(bag) as reader:
            types = {c.topic: c.msgtype for c in reader.connections}
            assert types == {"/cam": "sensor_msgs/msg/Image", "/seg": "perovss_interfaces/msg/Segmentation"}
            images, segs = {}, []
            for conn, _t, raw in reader.messages():
                msg = store.deserialize_cdr(raw, conn.msgtype)
                if conn.topic == "/cam":
                    images[msg.header.stamp.sec] = msg.data.reshape(msg.height, msg.width, 3)
                else:
                    segs.append(msg)
            recorded = sum(1 for c in reader.connections if c.topic == "/cam" for _ in reader.messages([c]))
        assert sorted(images) == [100 + i for i in range(N)]
        for i, rgb in enumerate(frames):
            assert np.array_equal(images[100 + i], rgb)
        assert segs and [s.label for s in segs[0].segments] == ["my_mug"] and segs[0].segments[0].instance_id == 3

        # A plain replay publishes every image message of the bag once and exits.
        replayer = start_perovss(ros_domain_id, ["replay", str(bag), "--fast", "--wait", "2"],
                                 tmp_path / "replay.log")
        assert replayer.wait(60) == 0, (tmp_path / "replay.log").read_text()
        assert f"published {recorded} message(s)" in (tmp_path / "replay.log").read_text()

        # Replayed under another name, looping until interrupted: every frame comes back unchanged.
        received: dict[int, np.ndarray] = {}
        count = [0]
        lock = threading.Lock()

        def on_image(msg: Image) -> None:
            with lock:
                received[msg.header.stamp.sec] = np.array(image_to_rgb(msg))
                count[0] += 1

        ros.node.create_subscription(Image, "/cam2", on_image, reliable(50))
        looper = start_perovss(ros_domain_id, ["replay", str(bag), "--remap", "/cam:=/cam2", "--rate", "20",
                                               "--loop", "--wait", "30"], tmp_path / "loop.log")
        assert wait_for(lambda: len(received) == N and count[0] > recorded, 60), f"{sorted(received)}, {count}"
        assert stop(looper) == 0, (tmp_path / "loop.log").read_text()
        for i, rgb in enumerate(frames):
            assert np.array_equal(received[100 + i], rgb)

        missing = start_perovss(ros_domain_id, ["replay", str(tmp_path / "nope")], tmp_path / "missing.log")
        assert missing.wait(60) == 1
        assert "nope" in (tmp_path / "missing.log").read_text()
    finally:
        for proc in (recorder, replayer, looper):
            if proc is not None:
                stop(proc)
        ros.close()


def test_a_replay_whose_context_shuts_down_mid_publish_stops_cleanly(ros_domain_id: int, tmp_path: Path) -> None:
    # Ctrl-C shuts the rclpy context down from the signal handler, possibly between the loop's stop
    # check and its publish; the replay must then end with what it sent, not a traceback.
    import rclpy

    from perovss_ros.ros.bags import replay
    from perovss_ros.sim.bags import write_scene_bag
    from perovss_ros.sim.scenes import make_scene

    bag = tmp_path / "scene"
    write_scene_bag(make_scene(seed=1, num_frames=6, size=(64, 48)), bag)
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=ros_domain_id)
    node = rclpy.create_node("replay_shutdown_test", context=context)
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["sent"] = replay(node, bag, fast=True, loop=True, wait_subscribers=0.0)
        except Exception as exc:  # what the test is about: nothing may escape
            outcome["error"] = exc

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    time.sleep(1.0)  # looping as fast as it can: the shutdown lands between or inside publishes
    context.shutdown()
    worker.join(30)
    assert not worker.is_alive(), "the replay kept looping after its context was shut down"
    assert "error" not in outcome, repr(outcome.get("error"))
    assert isinstance(outcome["sent"], int) and outcome["sent"] > 0
