"""The node in its own process, driven from this one: teach, stream, find, bad requests, diagnostics.

One node process serves the module's stream tests (classic backend, concept store in a temp
dir); the restart and lifecycle checks start their own processes. Every test passes alone
(``-k``): one that needs the scene's object taught asks for the ``taught`` fixture.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from action_msgs.msg import GoalStatus
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from perovss_interfaces.msg import Segmentation
from perovss_interfaces.srv import Forget, ListConcepts, SetVocabulary, Teach
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image, RegionOfInterest
from std_msgs.msg import Header

from perovss_ros.ros.image_conversion import instance_image_to_array, mask_to_image, rgb_to_image
from perovss_ros.ros.node import WARN_PERIOD_S
from perovss_ros.sim.scenes import make_scene
from tests.conftest import next_ros_domain_id
from tests.ros.helpers import RosHarness, node_cmd, reliable, start_perovss, stop, wait_for, where_everyone_is

pytestmark = [pytest.mark.ros, pytest.mark.slow]

SIZE = (160, 120)  # W, H
MAX_PIXELS = 40_000  # 160×120 fits, 320×240 does not
MAX_SHOTS = 8


class Stream:
    """Publishes frames on the node's `image` topic and collects its ~/segmentation by stamp."""

    def __init__(self, ros: RosHarness):
        self.ros = ros
        self.pub = ros.node.create_publisher(Image, "/image", reliable(1))
        self.results: dict[int, Segmentation] = {}
        self.overlays: dict[int, Image] = {}
        self._lock = threading.Lock()
        ros.node.create_subscription(Segmentation, "/perovss/segmentation", self._on_seg, reliable())
        ros.node.create_subscription(Image, "/perovss/overlay", self._on_overlay, reliable())
        self.next_stamp = 1000

    def _on_seg(self, msg: Segmentation) -> None:
        with self._lock:
            self.results[msg.header.stamp.sec] = msg

    def _on_overlay(self, msg: Image) -> None:
        with self._lock:
            self.overlays[msg.header.stamp.sec] = msg

    def frame_msg(self, rgb: np.ndarray, encoding: str = "rgb8") -> tuple[int, Image]:
        self.next_stamp += 1
        msg = rgb_to_image(rgb, Header(frame_id="cam"))
        msg.header.stamp.sec = self.next_stamp
        if encoding != "rgb8":
            msg.encoding = encoding
        return self.next_stamp, msg

    def send(self, rgb: np.ndarray, timeout: float = 20.0) -> Segmentation:
        """Publish one frame and wait for its segmentation (re-sent if best effort lost it)."""
        stamp, msg = self.frame_msg(rgb)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.pub.publish(msg)
            if wait_for(lambda: stamp in self.results, 3.0):
                return self.results[stamp]
        raise AssertionError(f"no segmentation for frame stamp {stamp} in {timeout} s")

    def send_until(self, rgb: np.ndarray, encoding: str, done: Callable[[], bool],
                   timeout: float = 20.0) -> list[int]:
        """Publish ``rgb`` labelled ``encoding`` every 0.2 s until ``done()``; returns the stamps sent.

        The node's image subscription is best effort with depth 1, so any single frame may be
        lost or replaced before its callback runs on a loaded machine.
        """
        stamps: list[int] = []
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            stamp, msg = self.frame_msg(rgb, encoding=encoding)
            self.pub.publish(msg)
            stamps.append(stamp)
            if wait_for(done, 0.2):
                return stamps
        raise AssertionError(f"the node never reacted to {encoding} frames in {timeout} s")

    def keep_sending(self, frames: list[np.ndarray], period: float = 0.1) -> threading.Event:
        """Publish ``frames`` in a loop on a thread until the returned event is set."""
        stop_event = threading.Event()

        def loop() -> None:
            i = 0
            while not stop_event.is_set():
                self.pub.publish(self.frame_msg(frames[i % len(frames)])[1])
                i += 1
                time.sleep(period)

        threading.Thread(target=loop, daemon=True).start()
        return stop_event


@pytest.fixture(scope="module")
def scene():
    return make_scene(seed=0, num_frames=30, size=SIZE, num_objects=1, num_lookalikes=2)


def _wait_started(ros: RosHarness, proc: subprocess.Popen, log: Path) -> None:
    """Until the node publishes ~/segmentation (configured and active); fails if it died."""
    ok = wait_for(lambda: ros.node.count_publishers("/perovss/segmentation") > 0 or proc.poll() is not None, 60.0)
    assert ok and proc.poll() is None, f"node did not start:\n{log.read_text()}"


@pytest.fixture(scope="module")
def perovss(tmp_path_factory):
    """The node process, a harness in this process, the store and the log path."""
    domain = next_ros_domain_id()
    tmp = tmp_path_factory.mktemp("perovss_node")
    store, log = tmp / "concepts", tmp / "node.log"
    proc = start_perovss(domain, node_cmd(store, f"max_image_pixels:={MAX_PIXELS}", f"max_shots:={MAX_SHOTS}",
                                          "diagnostics_period:=0.5"), log)
    ros = RosHarness(domain)
    try:
        _wait_started(ros, proc, log)
        yield {"proc": proc, "ros": ros, "stream": Stream(ros), "store": store, "log": log, "domain": domain}
    finally:
        stop(proc)
        ros.close()


def _teach_request(scene, name: str | None = None, replace: bool = False) -> Teach.Request:
    obj = scene.objects[0]
    return Teach.Request(
        name=name or obj.name,
        images=[rgb_to_image(f) for f in scene.teach_frames],
        masks=[mask_to_image(g == obj.instance_id) for g in scene.teach_gt],
        replace=replace,
    )


def _teach_scene_object(ros: RosHarness, scene) -> str:
    """Teach the scene's object from its 3 teach frames, replacing any earlier version; its name."""
    response = ros.call(Teach, "/perovss/teach", _teach_request(scene, replace=True))
    assert response.success, response.message
    return response.concept.name


@pytest.fixture
def taught(perovss, scene) -> str:
    """The scene's object, taught (3 shots) to the module's node whatever ran before."""
    return _teach_scene_object(perovss["ros"], scene)


def _concept_names(ros: RosHarness) -> dict[str, int]:
    return {c.name: c.num_shots for c in ros.call(ListConcepts, "/perovss/list_concepts",
                                                  ListConcepts.Request()).concepts}


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def test_teach_then_stream_matches_ground_truth(perovss, scene) -> None:
    ros, stream = perovss["ros"], perovss["stream"]
    obj = scene.objects[0]
    response = ros.call(Teach, "/perovss/teach", _teach_request(scene, replace=True))
    assert response.success, response.message
    assert response.concept.name == obj.name and response.concept.num_shots == 3
    assert 0.0 < response.self_iou <= 1.0
    assert _concept_names(ros) == {obj.name: 3}

    present_ious, absent_hits = [], []
    h, w = SIZE[1], SIZE[0]
    for i, (frame, gt) in enumerate(zip(scene.frames, scene.gt, strict=True)):
        seg = stream.send(frame)
        assert seg.header.frame_id == "cam"
        assert (seg.instance_mask.encoding, seg.instance_mask.height, seg.instance_mask.width) == ("16UC1", h, w)
        assert seg.instance_mask.header == seg.header
        ids = instance_image_to_array(seg.instance_mask)
        mine = [s for s in seg.segments if s.label == obj.name]
        if scene.present(i, obj.name):
            pred = ids == mine[0].instance_id if mine else np.zeros_like(ids, bool)
            present_ious.append(_iou(pred, gt == obj.instance_id))
            for s in mine:  # the box covers the published mask
                ys, xs = np.nonzero(ids == s.instance_id)
                if len(xs):
                    assert s.roi.x_offset <= xs.min() and xs.max() < s.roi.x_offset + s.roi.width
                    assert s.roi.y_offset <= ys.min() and ys.max() < s.roi.y_offset + s.roi.height
        else:
            absent_hits.append(len(mine))
    assert absent_hits, "the scene must contain frames where the object is absent"
    assert sum(absent_hits) == 0, f"segments on absent frames: {absent_hits}"
    assert np.mean(present_ious) >= 0.6, f"mean IoU on present frames {np.mean(present_ious):.2f}"
    # Overlay images were published (someone subscribed): rgb8, the input's size and stamp.
    assert stream.overlays, "no ~/overlay while subscribed"
    stamp, overlay = next(iter(stream.overlays.items()))
    assert (overlay.encoding, overlay.height, overlay.width) == ("rgb8", h, w)
    assert stamp in stream.results


def _find(ros: RosHarness, name: str, timeout_s: float, cancel_after: float | None = None):
    feedback: list[int] = []
    accepted, status, result = ros.find(name, timeout_s, feedback=feedback.append, cancel_after=cancel_after)
    return accepted, status, result, feedback


def test_find_succeeds_times_out_cancels_and_rejects(perovss, scene, taught) -> None:
    ros, stream = perovss["ros"], perovss["stream"]
    obj = scene.objects[0]
    present = [f for i, f in enumerate(scene.frames) if scene.present(i, obj.name)][:5]
    absent = [f for i, f in enumerate(scene.frames) if not scene.present(i, obj.name)]

    accepted, *_ = _find(ros, "never_taught", 2.0)
    assert not accepted, "an unknown name is rejected at goal time"

    sending = stream.keep_sending(present)
    try:
        accepted, status, result, feedback = _find(ros, obj.name, 20.0)
    finally:
        sending.set()
    assert accepted and status == GoalStatus.STATUS_SUCCEEDED
    assert result.found and result.segment.label == obj.name and result.segment.personal
    assert result.header.frame_id == "cam" and result.header.stamp.sec > 1000
    assert feedback and feedback == sorted(feedback) and feedback[-1] >= 1

    stream.send(absent[0])  # frames of the present stream still in flight are done now
    sending = stream.keep_sending(absent)
    try:
        t0 = time.monotonic()
        accepted, status, result, feedback = _find(ros, obj.name, 1.5)
        elapsed = time.monotonic() - t0
    finally:
        sending.set()
    assert accepted and status == GoalStatus.STATUS_ABORTED and not result.found
    assert elapsed >= 1.5 and feedback, "it searched frames until the timeout"

    accepted, status, result, _ = _find(ros, obj.name, 30.0, cancel_after=0.5)
    assert accepted and status == GoalStatus.STATUS_CANCELED and not result.found


def test_bad_requests_fail_clearly_and_lose_nothing(perovss, scene, taught) -> None:
    ros = perovss["ros"]
    obj = scene.objects[0]
    before = _concept_names(ros)
    assert obj.name in before
    good = _teach_request(scene)
    small = np.zeros((SIZE[1], SIZE[0]), bool)
    small_mask = mask_to_image(np.zeros((SIZE[1] // 2, SIZE[0] // 2), bool))
    odd = rgb_to_image(scene.teach_frames[0])
    odd.encoding = "32FC1"
    empty_image = Image(height=0, width=0, encoding="rgb8", step=0)
    big = rgb_to_image(np.zeros((240, 320, 3), np.uint8))
    many = [rgb_to_image(scene.teach_frames[0])] * (MAX_SHOTS + 1)
    cases = {
        "empty name": (Teach.Request(name="", images=good.images, masks=good.masks), "name"),
        "hostile name": (Teach.Request(name="../x", images=good.images, masks=good.masks), "name"),
        "mask size mismatch": (Teach.Request(name="cup2", images=good.images[:1], masks=[small_mask]), "mask"),
        "unsupported encoding": (Teach.Request(name="cup2", images=[odd], masks=[mask_to_image(small)]), "32FC1"),
        "0×0 image": (Teach.Request(name="cup2", images=[empty_image], masks=[mask_to_image(small)]), "0×0"),
        "over the size limit": (Teach.Request(name="cup2", images=[big], masks=[mask_to_image(small)]), "limit"),
        "too many images": (Teach.Request(name="cup2", images=many,
                                          masks=[mask_to_image(small)] * len(many)), "too many"),
        "no prompt": (Teach.Request(name="cup2", images=good.images), "mask"),
        "nothing to teach from": (Teach.Request(name="cup2"), "num_frames"),
        "empty box": (Teach.Request(name="cup2", images=good.images[:1], boxes=[RegionOfInterest()]), "box"),
    }
    for what, (request, hint) in cases.items():
        response = ros.call(Teach, "/perovss/teach", request)
        assert not response.success, what
        assert hint.lower() in response.message.lower(), f"{what}: {response.message!r}"
    forget = ros.call(Forget, "/perovss/forget", Forget.Request(name="never_taught"))
    assert not forget.success and "never_taught" in forget.message
    hostile = ros.call(Forget, "/perovss/forget", Forget.Request(name="../" + obj.name))
    assert not hostile.success
    vocab = ros.call(SetVocabulary, "/perovss/set_vocabulary", SetVocabulary.Request(labels=["cup", "chair"]))
    assert not vocab.success and "labelling is off" in vocab.message   # this node runs with labels false
    bad_vocab = ros.call(SetVocabulary, "/perovss/set_vocabulary", SetVocabulary.Request(labels=["", "x"]))
    assert not bad_vocab.success
    assert perovss["proc"].poll() is None, "the node keeps running"
    assert _concept_names(ros) == before, "no concept lost or half-made"
    assert (perovss["store"] / obj.name).is_dir(), "the stored concept is untouched"


def test_a_running_node_prints_its_stacks_on_request_and_goes_on(perovss, scene) -> None:
    """What an unanswered call's failure message shows: each node thread's stack, then the node carries on."""
    before = _concept_names(perovss["ros"])
    report = where_everyone_is()
    node_part = report.split("--- this process")[0]
    assert f"node pid {perovss['proc'].pid}" in node_part, report
    assert "Thread 0x" in node_part and "executor" in node_part, "every thread, the spinning one included"
    assert "--- this process, thread" in report
    assert perovss["proc"].poll() is None
    assert _concept_names(perovss["ros"]) == before, "still answering"
    seg = perovss["stream"].send(scene.frames[0])
    assert (seg.instance_mask.width, seg.instance_mask.height) == SIZE, "still segmenting"


def test_unsupported_stream_encoding_is_warned_once_and_skipped(perovss, scene) -> None:
    stream = perovss["stream"]

    def warnings() -> list[str]:
        return [line for line in perovss["log"].read_text().splitlines() if "yuv422" in line]

    stamps = stream.send_until(scene.frames[0], "yuv422", lambda: bool(warnings()))
    first_warning = time.monotonic()
    for _ in range(5):  # more of the same, inside the rate limit's period
        stamp, msg = stream.frame_msg(scene.frames[0], encoding="yuv422")
        stream.pub.publish(msg)
        stamps.append(stamp)
        time.sleep(0.05)
    seg = stream.send(scene.frames[1])  # the stream goes on
    assert seg.header.stamp.sec > max(stamps)
    assert not set(stamps) & set(stream.results), "rejected frames are not published"
    allowed = 1 + int((time.monotonic() - first_warning) // WARN_PERIOD_S)
    assert 1 <= len(warnings()) <= allowed, f"one rate-limited warning naming the encoding, got: {warnings()}"
    assert "rgb8" in warnings()[0], "the warning says what to send instead"


def test_diagnostics_report_backend_concepts_and_counts(perovss, scene, taught) -> None:
    ros, stream = perovss["ros"], perovss["stream"]
    got: list[DiagnosticArray] = []
    sub = ros.node.create_subscription(DiagnosticArray, "/diagnostics", got.append, reliable())

    def latest() -> dict[str, str]:
        return {kv.key: kv.value for kv in got[-1].status[0].values} if got else {}

    try:
        stream.send(scene.frames[0])
        stream.send_until(scene.frames[0], "bayer_rggb8", lambda: int(latest().get("frames_rejected", 0)) >= 1)
        values = latest()
    finally:
        ros.node.destroy_subscription(sub)
    assert values["backend"] == "classic"
    assert scene.objects[0].name in values["concepts"].split(",")
    assert int(values["frames_processed"]) > 0 and int(values["frames_rejected"]) >= 1
    assert got[-1].status[0].level == DiagnosticStatus.WARN, "rejected frames raise the status to WARN"
    assert "frames_dropped" in values and "fps" in values
    assert float(values["median_ms.pipeline"]) > 0 and "median_ms.node_overhead" in values


def test_frames_lost_before_arrival_are_warned_once_and_counted(perovss, scene) -> None:
    """A 10 Hz camera of which only 2 frames in 5 are sent: stamps advance, frames go missing."""
    ros, stream, log = perovss["ros"], perovss["stream"], perovss["log"]
    got: list[DiagnosticArray] = []
    sub = ros.node.create_subscription(DiagnosticArray, "/diagnostics", got.append, reliable())
    stop_sending = threading.Event()

    def warnings() -> list[str]:
        return [line for line in log.read_text().splitlines() if "lost before they reach perovss" in line]

    def latest() -> tuple[int, dict[str, str]]:
        status = got[-1].status[0] if got else None
        return (status.level, {kv.key: kv.value for kv in status.values}) if status else (0, {})

    def camera() -> None:
        # a stamp clock of its own (far from the other tests' stamps: the node starts a new window)
        for i in range(600):
            if stop_sending.is_set():
                return
            if i % 5 in (0, 1):
                msg = rgb_to_image(scene.frames[i % len(scene.frames)], Header(frame_id="cam"))
                msg.header.stamp.sec, msg.header.stamp.nanosec = 50_000 + i // 10, (i % 10) * 100_000_000
                stream.pub.publish(msg)
            time.sleep(0.1)

    threading.Thread(target=camera, daemon=True).start()
    try:
        assert wait_for(lambda: bool(warnings()), 30), "no warning about frames lost before arrival"
        assert wait_for(lambda: latest()[0] == DiagnosticStatus.WARN
                        and int(latest()[1].get("frames_lost_in_transport", 0)) > 0, 10), latest()
        # The loss goes on: still one warning. The counts are read once the window holds a few dozen
        # frames (just after the first warning they are small, and where the window starts decides
        # whether 2 of 5 or 3 of 5 are counted lost).
        assert wait_for(lambda: int(latest()[1].get("frames_sent_estimate", 0)) >= 30, 20), latest()
        values = latest()[1]
    finally:
        stop_sending.set()
        ros.node.destroy_subscription(sub)
    assert len(warnings()) == 1, warnings()
    assert "fastdds_large_images.xml" in warnings()[0] and "reliability:=reliable" in warnings()[0]
    assert float(values["camera_rate_hz"]) == pytest.approx(10.0, rel=0.05)
    sent, lost = int(values["frames_sent_estimate"]), int(values["frames_lost_in_transport"])
    assert lost > sent / 2, values  # at most 2 in 5 arrive


def test_teach_by_live_capture_with_one_box(perovss, scene) -> None:
    ros, stream = perovss["ros"], perovss["stream"]
    obj = scene.objects[0]
    ys, xs = np.nonzero(scene.teach_gt[0] == obj.instance_id)
    box = RegionOfInterest(x_offset=int(xs.min()), y_offset=int(ys.min()),
                           width=int(xs.max() - xs.min() + 1), height=int(ys.max() - ys.min() + 1))
    sending = stream.keep_sending(scene.teach_frames, period=0.1)
    try:
        response = ros.call(Teach, "/perovss/teach", Teach.Request(name="captured", num_frames=2, boxes=[box]))
    finally:
        sending.set()
    assert response.success, response.message
    assert response.concept.num_shots == 2
    assert ros.call(Forget, "/perovss/forget", Forget.Request(name="captured")).success
    assert "captured" not in _concept_names(ros)


def test_stream_keeps_flowing_while_teaching(perovss, scene) -> None:
    ros, stream = perovss["ros"], perovss["stream"]
    stream.send(scene.frames[0])
    sending = stream.keep_sending(scene.frames, period=0.05)
    try:
        before = set(stream.results)
        response = ros.call(Teach, "/perovss/teach", _teach_request(scene, name="second"))
        during = set(stream.results) - before
    finally:
        sending.set()
    assert response.success, response.message
    assert during, "segmentations kept coming while the concept was being taught"
    assert ros.call(Forget, "/perovss/forget", Forget.Request(name="second")).success


def test_commands_talk_to_the_node(perovss, scene, taught, tmp_path: Path) -> None:
    import cv2

    obj = scene.objects[0]
    image, mask = tmp_path / "ref.png", tmp_path / "ref_mask.png"
    cv2.imwrite(str(image), cv2.cvtColor(scene.teach_frames[0], cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(mask), (scene.teach_gt[0] == obj.instance_id).astype(np.uint8) * 255)

    def perovss_cmd(*args: str) -> tuple[int, str]:
        log = tmp_path / f"{args[0]}.log"
        proc = start_perovss(perovss["domain"], list(args), log)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            stop(proc, dump=True)  # a hung command: its stacks go to the log for the failure message
        finally:
            stop(proc)
        return proc.returncode, log.read_text()

    code, out = perovss_cmd("teach", "from_file", "--image", str(image), "--mask", str(mask))
    assert code == 0 and "from_file" in out and "self IoU" in out, out
    code, out = perovss_cmd("concepts")
    assert code == 0 and "from_file\t1 shot" in out and obj.name in out, out
    code, out = perovss_cmd("teach", "../x", "--image", str(image), "--mask", str(mask))
    assert code == 1 and "name" in out, out
    code, out = perovss_cmd("forget", "from_file")
    assert code == 0 and "forgot" in out, out
    code, out = perovss_cmd("find", "from_file", "--timeout", "1")
    assert code == 1 and "rejected" in out, out
    code, out = perovss_cmd("find", obj.name, "--timeout", "0.5")
    assert code == 1, f"no frames arrive, so the object is not found in time:\n{out}"
    assert "from_file" not in _concept_names(perovss["ros"])


def test_restart_keeps_concepts_lifecycle_and_qos_warning(scene, tmp_path: Path) -> None:
    """A node of its own is taught and stopped; a new one on the same store walks the lifecycle by hand."""
    import cv2
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState, GetState
    from rcl_interfaces.srv import SetParameters
    from rclpy.parameter import Parameter

    domain, store = next_ros_domain_id(), tmp_path / "concepts"
    first_log = tmp_path / "node1.log"
    first = start_perovss(domain, node_cmd(store), first_log)
    ros = RosHarness(domain)
    proc = None
    try:
        _wait_started(ros, first, first_log)
        _teach_scene_object(ros, scene)
        taught = _concept_names(ros)
        assert taught == {scene.objects[0].name: 3}
        assert stop(first) == 0, "the node exits cleanly on SIGINT"
        ros.reset()
        log = tmp_path / "node2.log"
        proc = start_perovss(domain, node_cmd(store, "reliability:=reliable", autostart=False), log)

        def state() -> str:
            return ros.call(GetState, "/perovss/get_state", GetState.Request()).current_state.label

        def change(transition: int) -> bool:
            return ros.call(ChangeState, "/perovss/change_state",
                            ChangeState.Request(transition=Transition(id=transition))).success

        assert state() == "unconfigured"
        assert change(Transition.TRANSITION_CONFIGURE) and state() == "inactive"
        # the stored identity models are used as they are: no concept is refitted or skipped
        assert "concept store:" not in log.read_text(), log.read_text()
        assert not ros.node.count_subscribers("/image"), "no subscription before activate"
        assert change(Transition.TRANSITION_ACTIVATE) and state() == "active"
        assert _concept_names(ros) == taught, "concepts survive the restart"

        # A best-effort camera cannot feed a reliable subscription: the node says what to change.
        pub = ros.node.create_publisher(Image, "/image", qos_profile_sensor_data)
        assert wait_for(lambda: "reliability:=best_effort" in log.read_text(), 10), log.read_text()
        ros.node.destroy_publisher(pub)

        def set_param(name: str, value: str) -> bool:
            request = SetParameters.Request(parameters=[Parameter(name, value=value).to_parameter_msg()])
            return ros.call(SetParameters, "/perovss/set_parameters", request).results[0].successful

        assert not set_param("image_transport", "compressed"), "read at activate: refused while active"
        assert change(Transition.TRANSITION_DEACTIVATE) and state() == "inactive"
        assert wait_for(lambda: not ros.node.count_subscribers("/image"), 5)
        accepted, _status, _result = ros.find(next(iter(taught)), 1.0)
        assert not accepted, "an inactive node rejects find goals"
        assert wait_for(lambda: "not active" in log.read_text(), 5), "and says why"
        assert set_param("image_transport", "compressed") and set_param("reliability", "best_effort")
        assert not set_param("backend", "sam"), "read at configure: refused while configured"
        assert change(Transition.TRANSITION_ACTIVATE) and state() == "active"

        # Compressed transport: png frames on image/compressed come out as segmentations.
        results: list[Segmentation] = []
        sub = ros.node.create_subscription(Segmentation, "/perovss/segmentation", results.append, reliable())
        cam = ros.node.create_publisher(CompressedImage, "/image/compressed", reliable(1))
        _ok, png = cv2.imencode(".png", cv2.cvtColor(scene.frames[0], cv2.COLOR_RGB2BGR))
        frame = CompressedImage(header=Header(frame_id="png_cam"), format="png", data=png.tobytes())
        assert wait_for(lambda: (cam.publish(frame), bool(results))[1], 20, step=0.5), log.read_text()
        assert results[0].header.frame_id == "png_cam"
        assert (results[0].instance_mask.width, results[0].instance_mask.height) == SIZE
        ros.node.destroy_subscription(sub)
        ros.node.destroy_publisher(cam)

        assert change(Transition.TRANSITION_DEACTIVATE) and state() == "inactive"
        assert change(Transition.TRANSITION_CLEANUP) and state() == "unconfigured"
        assert change(Transition.TRANSITION_CONFIGURE) and state() == "inactive"
        assert stop(proc) == 0, log.read_text()[-4000:]
    finally:
        stop(first)
        if proc is not None:
            stop(proc)
        ros.close()


def test_bad_configuration_fails_with_one_clear_line(tmp_path: Path) -> None:
    log = tmp_path / "bad.log"
    proc = start_perovss(next_ros_domain_id(), node_cmd(tmp_path / "store", "backend:=sam", "model:=vit_b",
                                                        f"checkpoint:={tmp_path / 'missing.pth'}"), log)
    try:
        proc.wait(60)
        # A node that ended without being stopped: an unanswered call's report says how, with its log.
        report = where_everyone_is()
    finally:
        stop(proc)
    assert proc.returncode == 1
    assert f"node pid {proc.pid} (bad.log) exited with 1" in report and "missing.pth" in report, report
    assert f"node pid {proc.pid}" not in where_everyone_is(), "once stopped, it is left out"
    errors = [line for line in log.read_text().splitlines() if "configure failed" in line]
    assert len(errors) == 1 and "missing.pth" in errors[0], log.read_text()
    assert "Traceback" not in log.read_text()
