"""The ``perovss`` lifecycle node: thin glue between ROS messages and the core pipeline.

configure: build the pipeline (backend, concepts) and the lifecycle publishers;
activate: subscribe, offer the services and the find action, start the worker;
deactivate / cleanup undo those steps. Expected failures (bad config, missing
checkpoint, unreadable concept store) log one line and return FAILURE.
"""

from __future__ import annotations

import os
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from perovss_interfaces.msg import Segmentation
from perovss_interfaces.srv import Forget, ListConcepts, SetVocabulary, Teach
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.time import Time
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from perovss_ros.core.errors import InvalidInputError, PerovssError
from perovss_ros.ros import params as P
from perovss_ros.ros.diagnostics import StreamStats, build_diagnostics
from perovss_ros.ros.find_action import FindServer
from perovss_ros.ros.frame_hub import FrameHub
from perovss_ros.ros.frame_loss import ArrivalEstimate, ArrivalMonitor, header_stamp_ns, is_lossy, loss_advice
from perovss_ros.ros.image_conversion import (
    check_image_encoding,
    compressed_to_rgb,
    image_to_rgb,
    rgb_to_image,
)
from perovss_ros.ros.latest_frame import LatestFrameWorker
from perovss_ros.ros.messages import concept_to_msg, frame_result_to_msg
from perovss_ros.ros.overlay import draw_overlay
from perovss_ros.ros.qos import output_qos, publisher_events, sensor_qos, subscription_events
from perovss_ros.ros.teach import (
    FrameCapture,
    TeachArgs,
    check_request_shape,
    request_boxes,
    request_to_args,
    success_response,
)

#: Most labels ~/set_vocabulary stores, and their longest length.
MAX_LABELS = 1000
MAX_LABEL_CHARS = 128
#: Seconds between repeats of the same per-frame warning.
WARN_PERIOD_S = 10.0
NOT_CONFIGURED = "node is not configured; configure and activate it first"


@dataclass
class FrameTiming:
    """Where one frame's time went (seconds): conversion, pipeline, message building and publishing."""

    convert: float
    pipeline: float
    publish: float

    @property
    def overhead(self) -> float:
        """Node time beyond the pipeline."""
        return self.convert + self.publish


def _arrival_values(est: ArrivalEstimate) -> dict[str, object]:
    """The arrival estimate's /diagnostics values (over the monitor's window of stamps)."""
    return {
        "camera_rate_hz": f"{est.rate_hz:.2f}" if est.rate_hz else "unknown",
        "frames_sent_estimate": est.sent,
        "frames_lost_in_transport": est.lost,
        "arrivals_span_s": f"{est.span_s:.1f}",
    }


class PerovssNode(LifecycleNode):
    """Lifecycle node ``perovss``; see the module docstring and docs/ARCHITECTURE.md."""

    def __init__(self, node_name: str = "perovss", **kwargs: Any):
        super().__init__(node_name, **kwargs)
        for spec in P.PARAMETERS:
            extra = f"one of: {', '.join(spec.choices)}" if spec.choices else ""
            self.declare_parameter(
                spec.name,
                spec.default,
                ParameterDescriptor(description=spec.description, additional_constraints=extra),
            )
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.pipeline = None
        self._active = False
        self._hub = FrameHub()
        self.stats = StreamStats()
        self.rejected_frames = 0
        #: Header stamps of the frames that arrive, against the camera's rate (see frame_loss).
        self.arrivals = ArrivalMonitor()
        self._loss_warned = False
        self._images_group = MutuallyExclusiveCallbackGroup()
        self._requests_group = ReentrantCallbackGroup()
        self._capture: FrameCapture | None = None
        self._capture_lock = threading.Lock()
        self._worker: LatestFrameWorker | None = None
        self._sub = None
        self._service_handles: list = []
        self._find: FindServer | None = None
        self._diag_timer = None
        self._seg_pub = self._overlay_pub = self._diag_pub = None
        self._last_warn: dict[str, float] = {}
        #: Optional hook called with (input header, FrameTiming) after each published frame (benchmarks).
        self.on_frame_timing: Callable[[Header, FrameTiming], None] | None = None

    # ------------------------------------------------------------------ parameters
    def param(self, name: str) -> Any:
        """Current value of one of the node's parameters."""
        return self.get_parameter(name).value

    def _on_set_parameters(self, changes: list[Parameter]) -> SetParametersResult:
        for change in changes:
            why = P.check_value(change.name, change.value)
            spec = P.BY_NAME.get(change.name)
            if why is None and spec is not None:
                if spec.applies == P.CONFIGURE and self.pipeline is not None:
                    why = (f"{change.name} is read at configure; deactivate and clean up the node, "
                           "set it, then configure again")
                elif spec.applies == P.ACTIVATE and self._active:
                    why = (f"{change.name} is read at activate; deactivate the node, set it, "
                           "then activate again")
            if why is not None:
                return SetParametersResult(successful=False, reason=why)
        return SetParametersResult(successful=True)

    def pipeline_config(self) -> dict[str, Any]:
        """The build_pipeline config from the parameters (concept_store ``~`` expanded; "" = in memory)."""
        config = {p.name: self.param(p.name) for p in P.PARAMETERS if p.pipeline_key}
        store = config["concept_store"]
        config["concept_store"] = os.path.expanduser(store) if store else None
        config["checkpoint"] = os.path.expanduser(config["checkpoint"])
        config["clip_checkpoint"] = os.path.expanduser(config["clip_checkpoint"])
        config["vocabulary"] = P.split_words(config["vocabulary"])
        return config

    # ------------------------------------------------------------------ lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Build the pipeline (loads the backend and the stored concepts) and the publishers."""
        from perovss_ros.core import build_pipeline  # torch import: not needed for --help

        try:
            self.pipeline = build_pipeline(self.pipeline_config())
        except PerovssError as exc:
            self.get_logger().error(f"configure failed: {exc}")
            return TransitionCallbackReturn.FAILURE
        for warning in self.pipeline.store_warnings:  # skipped or refitted concepts: on /rosout too
            self.get_logger().warning(f"concept store: {warning}")
        pub_qos = output_qos()
        warn = self.get_logger().warning
        self._seg_pub = self.create_lifecycle_publisher(
            Segmentation, "~/segmentation", pub_qos, event_callbacks=publisher_events("~/segmentation", warn))
        self._overlay_pub = self.create_lifecycle_publisher(
            Image, "~/overlay", output_qos(1), event_callbacks=publisher_events("~/overlay", warn))
        self._diag_pub = self.create_lifecycle_publisher(DiagnosticArray, "/diagnostics", output_qos(10))
        names = ", ".join(c.name for c in self.pipeline.concepts()) or "none"
        store = self.pipeline_config()["concept_store"] or "memory only"
        scene = self.pipeline.scene
        labels = (f"labels by {scene.model_id}, vocabulary: {', '.join(self.pipeline.vocabulary) or 'empty'}"
                  if scene is not None else "labels off")
        self.get_logger().info(
            f"configured: backend {self.pipeline.backend_name} ({self.pipeline.model_id}); "
            f"concepts: {names} (store: {store}); {labels}"
        )
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Subscribe, create services and the find action, start the worker and diagnostics."""
        transport = self.param("image_transport")
        reliability = self.param("reliability")
        compressed = transport == "compressed"
        topic, msg_type = ("image/compressed", CompressedImage) if compressed else ("image", Image)
        self._hub.reopen()
        self.arrivals.reset()
        self._loss_warned = False
        self._worker = LatestFrameWorker(self._handle_item, on_error=self._on_worker_error)
        self._worker.start()
        self._sub = self.create_subscription(
            msg_type, topic, self._on_image, sensor_qos(reliability),
            callback_group=self._images_group,
            event_callbacks=subscription_events(self.resolve_topic_name(topic), reliability,
                                                self.get_logger().warning),
        )
        group = self._requests_group
        self._service_handles = [
            self.create_service(Teach, "~/teach", self._on_teach, callback_group=group),
            self.create_service(Forget, "~/forget", self._on_forget, callback_group=group),
            self.create_service(ListConcepts, "~/list_concepts", self._on_list, callback_group=group),
            self.create_service(SetVocabulary, "~/set_vocabulary", self._on_vocabulary, callback_group=group),
        ]
        if self._find is None:  # kept across deactivations: see FindServer
            self._find = FindServer(self, self._hub, self._concept_names, group, active=lambda: self._active,
                                    known_categories=self._categories)
        period = float(self.param("diagnostics_period"))
        self._diag_timer = self.create_timer(period, self._publish_diagnostics)
        self._active = True
        self.get_logger().info(f"active: listening on {self.resolve_topic_name(topic)} ({reliability})")
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop listening and serving; the pipeline and its concepts stay loaded."""
        try:
            self._release_active()
        except Exception:
            return self._transition_error("deactivate")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Drop the pipeline and the publishers."""
        try:
            self._release_configured()
        except Exception:
            return self._transition_error("cleanup")
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Release everything, whatever the state."""
        try:
            self.release()
        except Exception:
            return self._transition_error("shutdown")
        return super().on_shutdown(state)

    def _transition_error(self, transition: str) -> TransitionCallbackReturn:
        # rclpy turns an exception in a transition callback into ERROR without a word; say why.
        self.get_logger().error(f"{transition} failed:\n{traceback.format_exc()}")
        return TransitionCallbackReturn.ERROR

    def release(self) -> None:
        """Stop the worker and drop subscriptions, services, publishers and the pipeline (idempotent)."""
        self._release_active()
        self._release_configured()
        if self._find is not None:
            self._find.destroy()
            self._find = None

    def _release_active(self) -> None:
        self._active = False
        self._hub.close()
        if self._sub is not None:
            self.destroy_subscription(self._sub)
            self._sub = None
        for srv in self._service_handles:
            self.destroy_service(srv)
        self._service_handles = []
        if self._diag_timer is not None:
            self.destroy_timer(self._diag_timer)
            self._diag_timer = None
        if self._worker is not None:
            self._worker.stop()
            self._worker = None

    def _release_configured(self) -> None:
        for attr in ("_seg_pub", "_overlay_pub", "_diag_pub"):
            pub = getattr(self, attr)
            if pub is not None:
                self.destroy_lifecycle_publisher(pub)
                setattr(self, attr, None)
        self.pipeline = None

    # ------------------------------------------------------------------ frames
    def _warn_every(self, key: str, text: str) -> None:
        """Log ``text`` at most once per WARN_PERIOD_S for each ``key``."""
        now = time.monotonic()
        if now - self._last_warn.get(key, -WARN_PERIOD_S) >= WARN_PERIOD_S:
            self._last_warn[key] = now
            self.get_logger().warning(text)

    def convert(self, msg: Image | CompressedImage):
        """Camera message → H×W×3 uint8 RGB (InvalidInputError on bad input)."""
        limit = int(self.param("max_image_pixels"))
        if isinstance(msg, CompressedImage):
            return compressed_to_rgb(msg, limit)
        return image_to_rgb(msg, limit)

    def _on_image(self, msg: Image | CompressedImage) -> None:
        self.arrivals.add(header_stamp_ns(msg.header.stamp), time.monotonic_ns())
        capture = self._capture
        if capture is not None:
            capture.offer(msg)
        try:
            # Rejected on arrival, not in the worker: a frame that can never be decoded must be
            # counted and warned about even when newer frames would replace it in the slot.
            check_image_encoding(msg)
        except InvalidInputError as exc:
            self._reject(msg, exc)
            return
        worker = self._worker
        if worker is not None:
            worker.submit(msg)

    def _reject(self, msg: Image | CompressedImage, exc: InvalidInputError) -> None:
        self.rejected_frames += 1
        encoding = getattr(msg, "encoding", None) or getattr(msg, "format", "")
        self._warn_every(f"reject:{encoding}", f"frame skipped: {exc}")

    def _on_worker_error(self, _msg: object, exc: BaseException) -> None:
        self._warn_every(f"error:{type(exc).__name__}", f"frame failed and was skipped: {exc!r}")

    def _handle_item(self, msg: Image | CompressedImage) -> None:
        self.handle_frame(msg)

    def handle_frame(self, msg: Image | CompressedImage) -> FrameTiming | None:
        """Convert, process, publish one frame; returns its timing, or None if the frame was rejected."""
        pipeline = self.pipeline
        if pipeline is None:
            return None
        t0 = time.perf_counter()
        try:
            rgb = self.convert(msg)
        except InvalidInputError as exc:
            self._reject(msg, exc)
            return None
        t1 = time.perf_counter()
        result = pipeline.process(rgb)
        t2 = time.perf_counter()
        seg_pub, overlay_pub = self._seg_pub, self._overlay_pub
        if seg_pub is not None:
            seg_pub.publish(frame_result_to_msg(result, msg.header))
        if (overlay_pub is not None and self.param("publish_overlay")
                and overlay_pub.get_subscription_count() > 0):
            overlay_pub.publish(rgb_to_image(draw_overlay(rgb, result), msg.header))
        t3 = time.perf_counter()
        self._hub.publish(msg.header, result)
        timing = FrameTiming(convert=t1 - t0, pipeline=t2 - t1, publish=t3 - t2)
        record = {f"pipeline.{k}": v for k, v in result.timings.items()}
        record.update(node_overhead=timing.overhead, pipeline=timing.pipeline)
        stamp = Time.from_msg(msg.header.stamp)
        if stamp.nanoseconds > 0:
            record["latency"] = (self.get_clock().now() - stamp).nanoseconds * 1e-9
        self.stats.record(record)
        hook = self.on_frame_timing
        if hook is not None:
            hook(msg.header, timing)
        return timing

    def _publish_diagnostics(self) -> None:
        pipeline, pub = self.pipeline, self._diag_pub
        if pipeline is None or pub is None:
            return
        worker = self._worker.stats if self._worker is not None else None
        values = {
            "backend": pipeline.backend_name,
            "model": pipeline.model_id,
            "concepts": ",".join(sorted(self._concept_names())),
            "frames_received": worker.submitted if worker else 0,
            "frames_processed": worker.processed if worker else 0,
            "frames_dropped": worker.dropped if worker else 0,
            "frames_failed": worker.failed if worker else 0,
            "frames_rejected": self.rejected_frames,
        }
        arrivals = self.arrivals.estimate()
        values.update(_arrival_values(arrivals))
        problems = (["some frames rejected"] if self.rejected_frames else []) + (
            ["frames lost before they arrive"] if self._lossy(arrivals) else [])
        level = DiagnosticStatus.WARN if problems else DiagnosticStatus.OK
        message = f"{'; '.join(problems)} (see log)" if problems else "running"
        header = Header(stamp=self.get_clock().now().to_msg())
        pub.publish(build_diagnostics(header, f"{self.get_name()}: pipeline", pipeline.model_id,
                                      values, self.stats, level, message))

    def _lossy(self, est: ArrivalEstimate) -> bool:
        """Whether fewer than half the camera's frames arrive; the first time, say how to fix it."""
        if not is_lossy(est):
            return False
        if not self._loss_warned:
            self._loss_warned = True
            topic = self._sub.topic_name if self._sub is not None else "image"
            self.get_logger().warning(loss_advice(est, topic))
        return True

    # ------------------------------------------------------------------ requests
    def _concept_names(self) -> set[str]:
        pipeline = self.pipeline
        return {c.name for c in pipeline.concepts()} if pipeline is not None else set()

    def _categories(self) -> set[str]:
        """Words ~/find accepts besides concept names: the vocabulary and the concepts' categories."""
        pipeline = self.pipeline
        if pipeline is None:
            return set()
        return set(pipeline.vocabulary) | {c.category for c in pipeline.concepts() if c.category}

    def capture_frames(self, count: int) -> list:
        """Take the next ``count`` frames from the live topic (H×W×3 uint8 RGB each)."""
        timeout = float(self.param("capture_timeout"))
        if not self._capture_lock.acquire(blocking=False):
            raise InvalidInputError("another live capture is running; retry when it has finished")
        try:
            capture = FrameCapture(count, self.convert)
            self._capture = capture
            capture.done.wait(timeout)
        finally:
            self._capture = None
            self._capture_lock.release()
        if len(capture.frames) < count:
            topic = self._sub.topic_name if self._sub is not None else "image"
            detail = f"; rejected frames: {capture.errors[-1]}" if capture.errors else ""
            arrivals = self.arrivals.estimate()
            if is_lossy(arrivals):
                detail += f"; {loss_advice(arrivals, topic)}"
            raise InvalidInputError(
                f"captured {len(capture.frames)} of {count} frames from '{topic}' in {timeout:.0f} s; "
                f"is the camera publishing? (parameter capture_timeout){detail}"
            )
        return capture.frames[:count]

    def _on_teach(self, request: Teach.Request, response: Teach.Response) -> Teach.Response:
        pipeline = self.pipeline
        if pipeline is None:
            response.success, response.message = False, NOT_CONFIGURED
            return response
        try:
            check_request_shape(request, int(self.param("max_shots")))
            if request.images:
                args = request_to_args(request, int(self.param("max_image_pixels")))
            else:
                boxes = request_boxes(request)  # validated before waiting for frames
                args = TeachArgs(images=self.capture_frames(int(request.num_frames)), boxes=boxes,
                                 category=request.category)
            existed = request.name in self._concept_names()
            result = pipeline.teach(
                request.name, args.images, masks=args.masks, boxes=args.boxes,
                fine_tune=bool(request.fine_tune), replace=bool(request.replace), category=args.category,
            )
        except PerovssError as exc:
            if request.name or request.images or request.num_frames:  # an empty request is a client's probe
                self.get_logger().warning(f"teach '{request.name}' refused: {exc}")
            response.success, response.message = False, str(exc)
            return response
        except Exception as exc:  # keep serving; the traceback goes to the log
            self.get_logger().error(f"teach '{request.name}' failed: {exc!r}")
            response.success, response.message = False, f"internal error while teaching: {exc!r}"
            return response
        action = "replaced" if request.replace and existed else ("extended" if existed else "taught")
        out = success_response(request.name, result, action)
        self.get_logger().info(out.message)
        return out

    def _on_forget(self, request: Forget.Request, response: Forget.Response) -> Forget.Response:
        pipeline = self.pipeline
        try:
            if pipeline is None:
                raise InvalidInputError(NOT_CONFIGURED)
            pipeline.forget(request.name)
        except PerovssError as exc:  # unknown or invalid name: the core's message lists what is taught
            response.success, response.message = False, str(exc)
            return response
        self.get_logger().info(f"forgot '{request.name}'")
        response.success, response.message = True, f"forgot '{request.name}'"
        return response

    def _on_list(self, _request: ListConcepts.Request,
                 response: ListConcepts.Response) -> ListConcepts.Response:
        pipeline = self.pipeline
        response.concepts = [concept_to_msg(c) for c in pipeline.concepts()] if pipeline is not None else []
        return response

    def _on_vocabulary(self, request: SetVocabulary.Request,
                       response: SetVocabulary.Response) -> SetVocabulary.Response:
        labels = [label.strip() for label in request.labels]
        bad = [label for label in labels if not label or len(label) > MAX_LABEL_CHARS]
        if len(labels) > MAX_LABELS or bad:
            response.success = False
            response.message = (f"give at most {MAX_LABELS} labels of 1..{MAX_LABEL_CHARS} characters"
                                + (f"; offending: {bad[0]!r}" if bad else f"; got {len(labels)}"))
            return response
        pipeline = self.pipeline
        try:
            if pipeline is None:
                raise InvalidInputError(NOT_CONFIGURED)
            if pipeline.scene is None:
                raise InvalidInputError("labelling is off (parameter labels false): set labels true and "
                                        "configure again to label the scene")
            pipeline.set_vocabulary(labels)
        except PerovssError as exc:
            response.success, response.message = False, str(exc)
            return response
        self.get_logger().info(f"vocabulary: {', '.join(labels) or 'empty (nothing generic is labelled)'}")
        response.success = True
        response.message = f"labelling with {len(labels)} word(s) from the next frame on"
        return response

    @property
    def vocabulary(self) -> list[str]:
        """The words generic segments are labelled with (empty when labelling is off)."""
        return list(self.pipeline.vocabulary) if self.pipeline is not None else []
