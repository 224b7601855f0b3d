"""The demo run: a real node process, a real teach call, a bag replayed frame by frame.

``perovss demo`` (and ``make demo``) use :func:`run_demo`. Nothing here is simulated
beyond the camera: the node runs in its own process, the concept is taught through
``~/teach``, every frame of the bag is published on the node's image topic and the
published ``~/segmentation`` is what gets scored.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rclpy
from perovss_interfaces.msg import Segmentation
from perovss_interfaces.srv import Teach
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSHistoryPolicy, QoSProfile, QoSReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from perovss_ros.core.types import BoxXYXY, FrameResult, Segment
from perovss_ros.ros.client import PerovssClient, keep_until_exit
from perovss_ros.ros.image_conversion import instance_image_to_array, rgb_to_image
from perovss_ros.ros.messages import box_to_roi, roi_to_box

IMAGE_TOPIC = "/perovss_demo/image_raw"
NODE_NAME = "perovss"


@dataclass
class StreamedFrame:
    """What the node published for one replayed frame.

    ``instance_mask`` is ``H×W uint16``; ``segments`` as the node published them;
    ``latency_s`` is publish-to-receive wall time (None when no answer came).
    """

    index: int
    instance_mask: np.ndarray | None
    segments: list[Segment] = field(default_factory=list)
    latency_s: float | None = None

    def result(self) -> FrameResult:
        """The frame as a core FrameResult (for drawing)."""
        return FrameResult(self.instance_mask, self.segments)

    def relabel(self, ids: dict[str, int], shape: tuple[int, int]) -> np.ndarray:
        """``H×W uint16`` mask with each personal segment named in ``ids`` set to ``ids[label]``.

        Frames without an answer give an empty mask of ``shape`` (scored as "nothing found").
        """
        out = np.zeros(shape, np.uint16)
        if self.instance_mask is not None:
            for seg in self.segments:
                if seg.personal and seg.label in ids:
                    out[self.instance_mask == seg.instance_id] = ids[seg.label]
        return out


class NodeProcess:
    """The perovss node in a child process, stopped with SIGINT (then SIGKILL) on close."""

    def __init__(self, params: dict[str, str], log_path: Path, remaps: dict[str, str]):
        cmd = [sys.executable, "-m", "perovss_ros.cli", "node", "--ros-args", "-r", f"__node:={NODE_NAME}"]
        for key, value in params.items():
            cmd += ["-p", f"{key}:={value}"]
        for src, dst in remaps.items():
            cmd += ["-r", f"{src}:={dst}"]
        self.log_path = log_path
        self._log = open(log_path, "w")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT)

    def alive(self) -> bool:
        """True while the node process runs."""
        return self.proc.poll() is None

    def close(self) -> None:
        """Stop the node and close its log."""
        if self.alive():
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()


def teach_over_service(client: PerovssClient, name: str, images: list[np.ndarray], first_box: BoxXYXY,
                       timeout: float = 300.0, category: str = "") -> Teach.Response:
    """Teach ``name`` through ``~/teach`` from ``images`` with one box on the first image (propagated);
    ``category`` its vocabulary word ("" lets the node infer it when labelling is on)."""
    height, width = images[0].shape[:2]
    request = Teach.Request(name=name, replace=True, category=category)
    request.images = [rgb_to_image(img) for img in images]
    request.boxes = [box_to_roi(first_box, width, height)]
    return client.teach(request, timeout=timeout)


class FrameStreamer:
    """Publishes frames to the node and waits for the segmentation of each (lock-step replay).

    Lock-step rather than real-time so that every frame of the bag is scored; the
    node's latest-frame policy is exercised by the node tests and ``perovss bench node``.
    """

    def __init__(self, node_name: str = NODE_NAME, image_topic: str = IMAGE_TOPIC, teardown: bool = True):
        self._teardown = teardown
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("perovss_demo_stream", context=self.context)
        qos = QoSProfile(history=QoSHistoryPolicy.KEEP_LAST, depth=1,
                         reliability=QoSReliabilityPolicy.RELIABLE)
        self.publisher = self.node.create_publisher(Image, image_topic, qos)
        self._latest: Segmentation | None = None
        self.node.create_subscription(Segmentation, f"/{node_name}/segmentation", self._on_segmentation,
                                      QoSProfile(depth=10, reliability=QoSReliabilityPolicy.RELIABLE))
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)

    def _on_segmentation(self, msg: Segmentation) -> None:
        self._latest = msg

    def wait_for_node(self, timeout: float) -> bool:
        """Wait until the node subscribes to the image topic."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.publisher.get_subscription_count() > 0:
                return True
            self.executor.spin_once(timeout_sec=0.1)
        return False

    def send(self, index: int, rgb: np.ndarray, timeout: float) -> StreamedFrame:
        """Publish frame ``index`` (stamp = index ms) and wait for its segmentation."""
        header = Header(frame_id="camera")
        header.stamp.sec, header.stamp.nanosec = index // 1000, (index % 1000) * 1_000_000
        self._latest = None
        start = time.monotonic()
        self.publisher.publish(rgb_to_image(rgb, header))
        end = start + timeout
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=0.05)
            msg = self._latest
            if msg is not None and (msg.header.stamp.sec, msg.header.stamp.nanosec) == (
                    header.stamp.sec, header.stamp.nanosec):
                segments = [Segment(s.label, int(s.instance_id), float(s.score), roi_to_box(s.roi), s.personal,
                                    s.category) for s in msg.segments]
                return StreamedFrame(index, instance_image_to_array(msg.instance_mask), segments,
                                     time.monotonic() - start)
        return StreamedFrame(index, None)

    def close(self) -> None:
        """Destroy the streaming node and its context (unless ``teardown`` is False, see client.py)."""
        if not self._teardown:
            keep_until_exit(self)
            return
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)



@dataclass
class DemoOptions:
    """What ``perovss demo`` generates and runs. ``size`` is ``(W, H)``."""

    out: str | Path = "demo_out"
    seed: int = 7
    frames: int = 60
    size: tuple[int, int] = (640, 480)
    lookalikes: int = 3
    backend: str = "auto"
    model: str = "vit_b"
    gif: bool = True
    frame_timeout_s: float = 120.0
    labels: bool = False


def ensure_synthetic_clip() -> Path:
    """The synthetic CLIP's weights file, trained first when it is not cached (a few minutes, once)."""
    from perovss_ros.core.labels import synthetic_clip

    path = synthetic_clip.weights_path(synthetic_clip.DEFAULT_RECIPE)
    if not path.is_file():
        _say(f"building {synthetic_clip.NAME} once (a few minutes on 2 CPU cores, cached in {path.parent}); "
             "it knows only the synthetic world")
        path = synthetic_clip.build()
    return path


def labelled_view(answer: StreamedFrame, shape: tuple[int, int]) -> tuple[np.ndarray, dict[int, str]]:
    """Every published segment of one frame for the overlay: ``H×W uint16`` ids and id -> text
    (a personal segment as ``label (category)``, a generic one as its word)."""
    if answer.instance_mask is None:
        return np.zeros(shape, np.uint16), {}
    names = {s.instance_id: (f"{s.label} ({s.category})" if s.personal and s.category else s.label)
             for s in answer.segments}
    return answer.instance_mask, names


def mask_box(mask: np.ndarray) -> BoxXYXY:
    """Tight XYXY box (exclusive max) of a non-empty ``H×W`` mask."""
    ys, xs = np.nonzero(mask)
    return float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)


def _say(text: str) -> None:
    print(f"perovss demo: {text}", flush=True)


def _prepare_out(out: Path) -> None:
    """Remove what an earlier demo wrote (and only that) so the bag writer can start fresh."""
    out.mkdir(parents=True, exist_ok=True)
    for name in ("scene_bag", "concepts"):
        if (out / name).exists():
            shutil.rmtree(out / name)


def run_demo(options: DemoOptions) -> int:
    """Generate, teach over the service, replay through the node, score, write ``options.out``."""
    import imageio.v2 as imageio

    from perovss_ros.core.config import PipelineConfig
    from perovss_ros.core.registry import resolve_backend
    from perovss_ros.eval.plots import overlay, thumbnail
    from perovss_ros.eval.report import write_report
    from perovss_ros.eval.runner import ConceptMap, EvalRecorder
    from perovss_ros.sim.bags import read_frames, read_teach, write_scene_bag
    from perovss_ros.sim.categories import OBJECT_WORDS
    from perovss_ros.sim.scenes import make_scene
    from perovss_ros.sim.topics import MASK_TOPIC

    started = time.monotonic()
    out = Path(options.out)
    _prepare_out(out)
    width, height = options.size
    scene = make_scene(seed=options.seed, num_frames=options.frames, size=(width, height), num_objects=1,
                       num_lookalikes=options.lookalikes)
    target = scene.objects[0]
    bag = out / "scene_bag"
    write_scene_bag(scene, bag)
    _say(f"scene: {options.frames} frames {width}×{height}, '{target.name}' among {options.lookalikes} "
         f"look-alikes (seed {options.seed}) -> {bag}")

    backend = resolve_backend(PipelineConfig(backend=options.backend, model=options.model, concept_store=""))
    why = ("an official checkpoint is present" if backend == "sam" and options.backend == "auto"
           else "no SAM checkpoint found (perovss models download sam_vit_b)" if options.backend == "auto"
           else "asked for")
    _say(f"backend: {backend} ({why})")

    params = {"backend": backend, "model": options.model, "concept_store": str((out / "concepts").resolve()),
              "reliability": "reliable", "publish_overlay": "false"}
    if options.labels:
        clip = ensure_synthetic_clip()
        params.update(labels="true", clip_model="synthetic-clip", vocabulary=",".join(OBJECT_WORDS))
        _say(f"labels: on, synthetic-clip ({clip.name}), vocabulary {', '.join(OBJECT_WORDS)}")
    node = NodeProcess(params, out / "node.log", remaps={"image": IMAGE_TOPIC})
    client = streamer = None
    try:
        client = PerovssClient(f"/{NODE_NAME}", teardown=False)
        teach = read_teach(bag)
        first_box = mask_box(teach[0].mask == target.instance_id)
        t0 = time.monotonic()
        response = teach_over_service(client, target.name, [f.rgb for f in teach], first_box,
                                      category=target.shape if options.labels else "")
        teach_seconds = time.monotonic() - t0
        if not response.success:
            _say(f"teaching failed: {response.message} (node log: {node.log_path})")
            return 1
        _say(f"taught '{target.name}' over ~/teach from {len(teach)} frames with one box "
             f"{tuple(int(v) for v in first_box)} in {teach_seconds:.1f} s; self IoU {response.self_iou:.2f}"
             + (f"; category '{response.concept.category}'" if options.labels else ""))
        streamer = FrameStreamer(teardown=False)
        if not streamer.wait_for_node(timeout=30.0):
            _say(f"the node never subscribed to {IMAGE_TOPIC} (node log: {node.log_path})")
            return 1
        recorder = EvalRecorder(out, worst_k=12)
        recorder.add_teach(target.name, {"shots": len(teach), "self_iou": float(response.self_iou),
                                         "seconds": teach_seconds, "taught_from": "one box on the first frame"})
        concept = [ConceptMap(target.name, 1, target.instance_id)]
        gif_frames, unanswered = [], 0
        words: Counter[str] = Counter()  # generic segments published, by word (labelled demo)
        for frame in read_frames(bag, mask_topic=MASK_TOPIC):
            answer = streamer.send(len(gif_frames), frame.rgb, options.frame_timeout_s)
            unanswered += answer.instance_mask is None
            mask = answer.relabel({target.name: 1}, frame.rgb.shape[:2])
            scores = {s.label: s.score for s in answer.segments if s.personal}
            recorder.add("demo", len(gif_frames), frame.rgb, mask, frame.mask, concept, answer.latency_s, None,
                         scores)
            if options.labels:
                words.update(seg.label for seg in answer.segments if not seg.personal)
                shown, names = labelled_view(answer, frame.rgb.shape[:2])
            else:
                shown, names = mask, {1: target.name}
            gif_frames.append(thumbnail(overlay(frame.rgb, shown, frame.mask == target.instance_id, names), 480))
    finally:
        for closable in (streamer, client):
            if closable is not None:
                closable.close()
        node.close()

    if unanswered:
        _say(f"{unanswered} of {len(gif_frames)} frames got no segmentation (node log: {node.log_path})")
    recorder.write_index()
    result = recorder.result({"source": "perovss demo", "kind": "scene bag", "seed": options.seed,
                              "backend": backend, "node": NODE_NAME, "unanswered_frames": unanswered})
    paths = write_report(result, out, title=f"perovss demo: {target.name}, worst frames first "
                                             "(white outline: ground truth)")
    if options.gif:
        paths["gif"] = out / "demo.gif"
        imageio.mimsave(paths["gif"], gif_frames, duration=0.1, loop=0)
    summary = result.per_concept[target.name]
    elapsed = time.monotonic() - started
    _say(f"{target.name}: mIoU {summary['miou']:.3f} over {summary['frames_present']} frames where it is "
         f"present; presence precision {summary['presence_precision']:.2f}, recall "
         f"{summary['presence_recall']:.2f}; J&F {summary['jf']:.3f}; {unanswered} unanswered frames")
    if options.labels:
        named = ", ".join(f"{word} {n}" for word, n in words.most_common()) or "none"
        _say(f"labels: {sum(words.values())} generic segments published over {len(gif_frames)} frames ({named})")
    for key in ("contact_sheet", "gif", "report", "metrics"):
        if key in paths:
            _say(f"{key.replace('_', ' ')}: {paths[key]}")
    _say(f"done in {elapsed:.0f} s")
    return 0 if unanswered < len(gif_frames) else 1

