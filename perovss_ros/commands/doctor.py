"""``perovss doctor``: what this machine can run, every line checked, not assumed."""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import os
import platform
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from perovss_ros.core.checkpoints import Checkpoint

HELP = ("check the installation: ROS, Python, torch and devices, runtimes, backends, checkpoints, concept store; "
        "--topic T: frames lost before they arrive")
#: ``--topic`` listens with an rclpy node: exit without rclpy teardown (see perovss_ros.ros.client).
EXIT_WITHOUT_TEARDOWN = True


@dataclass
class Check:
    """One line of the report: a topic, what was found, and whether it is fine."""

    topic: str
    value: str
    ok: bool = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``perovss doctor``."""
    parser.add_argument("--json", action="store_true", help="print the checks as JSON")
    parser.add_argument("--config", default=None, help="pipeline config YAML to resolve the backend with")
    parser.add_argument("--topic", default=None, metavar="T",
                        help="also listen to camera topic T and estimate from its header stamps how many "
                             "frames are lost before they arrive (the node's check)")
    parser.add_argument("--seconds", type=float, default=5.0, help="how long --topic listens (default 5)")


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _ros_checks() -> list[Check]:
    checks = []
    distro = os.environ.get("ROS_DISTRO")
    rclpy_version = _version("ros-rclpy")
    if not distro and rclpy_version:
        distro = "kilted (PyPI wheels)"
    checks.append(Check("ROS distro", distro or "not found", ok=bool(distro)))
    try:
        import rclpy  # noqa: F401
        from rclpy.utilities import get_rmw_implementation_identifier

        rmw = get_rmw_implementation_identifier()
        checks.append(Check("rclpy", f"importable ({rclpy_version or 'system install'}), RMW {rmw}"))
    except Exception as exc:  # any import/load failure is the finding itself
        checks.append(Check("rclpy", f"not usable: {exc}", ok=False))
    checks.append(Check("ROS_DOMAIN_ID", os.environ.get("ROS_DOMAIN_ID", "0 (default)")))
    transports = os.environ.get("FASTDDS_BUILTIN_TRANSPORTS")
    checks.append(
        Check(
            "Fast DDS transports",
            transports or "default (large images may be dropped; see README 'Large images')",
            ok=True,
        )
    )
    try:
        import perovss_interfaces.msg  # noqa: F401

        checks.append(Check("perovss_interfaces", "importable"))
    except Exception as exc:
        checks.append(Check("perovss_interfaces", f"not importable: {exc} (run `make venv`)", ok=False))
    return checks


def _torch_checks() -> list[Check]:
    try:
        import torch
    except Exception as exc:
        return [Check("torch", f"not importable: {exc}", ok=False)]
    cuda = torch.cuda.is_available()
    device = f"cuda ({torch.cuda.get_device_name(0)})" if cuda else "cpu only (no CUDA device)"
    return [Check("torch", f"{torch.__version__}, {torch.get_num_threads()} threads"), Check("device", device)]


def _runtime_checks() -> list[Check]:
    """One line per runtime of the sam backend: what it can run here, and why not where it cannot."""
    try:
        import torch

        cuda = torch.cuda.is_available()
    except Exception:  # torch's own line says why
        cuda = False
    checks = [Check("runtime torch", "sam on the CPU" + ("; on CUDA with the encoder in fp16 autocast" if cuda
                                                           else "; not on CUDA (no CUDA device)"))]
    try:
        import onnxruntime

        providers = onnxruntime.get_available_providers()
        on_cuda = "CUDAExecutionProvider" in providers
        where = "sam encoder and decoder graphs on the CPU" + (
            "; on CUDA (CUDA provider)" if on_cuda and cuda else
            "; not on CUDA (" + ("no CUDA device" if on_cuda else "no CUDA provider: onnxruntime-gpu") + ")")
        checks.append(Check("onnxruntime", f"{onnxruntime.__version__}: {where}; providers {', '.join(providers)}"))
    except Exception as exc:
        checks.append(Check("onnxruntime", f"not importable: {exc}", ok=False))
    try:  # the backend's own checks, so these lines cannot promise more than it runs
        from perovss_ros.core.sam.backend import resolve_runtime
        from perovss_ros.core.sam.tensorrt_engines import tensorrt_problem
    except ImportError as exc:
        checks.append(Check("TensorRT", f"not installed (sam backend not importable: {exc})"))
        return checks
    problem = tensorrt_problem()
    try:
        trt = importlib.import_module("tensorrt")
        value = (f"{trt.__version__}: sam encoder and decoder engines on CUDA (runtime tensorrt; "
                 "`perovss engines build` prepares them)" if problem is None
                 else f"{trt.__version__} installed but cannot run: {problem}")
        checks.append(Check("TensorRT", value))
    except Exception:
        checks.append(Check("TensorRT", "not installed: runtime tensorrt is refused here (install the tensorrt "
                                        "wheel, or JetPack's python3-libnvinfer, on a machine with CUDA)"))
    import torch

    auto = [f"cpu -> {resolve_runtime('auto', torch.device('cpu'))}"]
    if cuda:
        auto.append(f"cuda -> {resolve_runtime('auto', torch.device('cuda'))}")
    checks.append(Check("runtime auto", ", ".join(auto)))
    return checks


def _concept_store(config_path: str | None, configured: str | None) -> str:
    """Where concepts go: the config's store, or without a config the node's default."""
    if config_path is not None:
        return configured or "in memory only"
    from perovss_ros.core.config import PERSISTENT_CONCEPT_STORE

    return (f"{os.path.expanduser(PERSISTENT_CONCEPT_STORE)} (the node's default; "
            "build_pipeline() without concept_store keeps concepts in memory)")


def _checkpoint_check(ckpt: Checkpoint, accepted: Callable[[Checkpoint, None], bool] | None) -> tuple[Check, bool]:
    """One catalogue checkpoint's line, and whether it is usable: missing, usable, or present but
    refused by the backend's own check.

    ``accepted`` is that check (``core.sam.weights.checkpoint_present``: the file exists and has
    the catalogue's size), or None when the sam backend cannot be imported to ask it.
    """
    from perovss_ros.core.checkpoints import find_checkpoint

    path = find_checkpoint(ckpt.name)
    fetch = f"perovss models download {ckpt.name}"
    if path is None:
        return Check(f"checkpoint {ckpt.name}", f"missing ({fetch})"), False
    if accepted is None or accepted(ckpt, None):
        return Check(f"checkpoint {ckpt.name}", str(path)), True
    return Check(f"checkpoint {ckpt.name}",
                 f"{path} has {path.stat().st_size} bytes, not the official {ckpt.size_bytes}: "
                 f"the backend refuses it ({fetch})", ok=False), False


def _backend_checks(config_path: str | None) -> list[Check]:
    checks = []
    from perovss_ros.core.checkpoints import CHECKPOINTS, default_model_dir

    try:  # the size check the sam backend itself applies before it loads a checkpoint
        from perovss_ros.core.sam.weights import checkpoint_present
    except ImportError:
        checkpoint_present = None
    model_dir = default_model_dir()
    usable = {}
    for name, ckpt in CHECKPOINTS.items():
        check, usable[name] = _checkpoint_check(ckpt, checkpoint_present)
        checks.append(check)
    checks.append(Check("model directory", str(model_dir)))
    try:
        from perovss_ros.core.config import PipelineConfig
        from perovss_ros.core.registry import BACKENDS, resolve_backend

        config = PipelineConfig.coerce(config_path)
        runnable = ["classic (weights-free, OpenCV)"]
        if "sam" in BACKENDS:
            found = [c.model for c in CHECKPOINTS.values() if c.family == "sam" and usable[c.name]]
            try:
                importlib.import_module("perovss_ros.core.sam")
                weights = ", ".join(found) if found else "no usable official checkpoint"
                runnable.append(f"sam ({weights}; tiny with random weights for tests)")
            except ImportError as exc:
                checks.append(Check("sam backend", f"not importable: {exc}", ok=False))
        checks.append(Check("backends that can run", "; ".join(runnable)))
        resolved = resolve_backend(config)
        checks.append(Check("backend that will run",
                            f"{resolved} (config backend={config.backend}, model={config.model})"))
        checks.append(Check("concept store", _concept_store(config_path, config.concept_store)))
        checks.append(_labels_check(config))
    except Exception as exc:  # the failure is the finding; doctor must still print the rest
        checks.append(Check("perception core", f"not usable: {exc}", ok=False))
    return checks


def _labels_check(config) -> Check:
    """Which CLIP labels the scene (loaded here, as the pipeline would), or why labelling is off."""
    from perovss_ros.core.errors import PerovssError

    if not config.labels:
        return Check("labels", f"off (config labels false); would use CLIP {config.clip_model}: "
                               f"{_clip_presence(config.clip_model, config.clip_checkpoint)}")
    from perovss_ros.core.labelling import build_region_labeller

    try:
        labeller = build_region_labeller(config)
    except PerovssError as exc:
        return Check("labels", f"on, but the CLIP cannot be loaded: {exc}", ok=False)
    words = ", ".join(labeller.vocabulary) or "empty: set one with ~/set_vocabulary"
    return Check("labels", f"on: CLIP {labeller.model_id} loaded; vocabulary {words}")


def _clip_presence(model: str, checkpoint: str) -> str:
    """Whether a CLIP's weights are where the labels would load them from (without loading them)."""
    if model == "synthetic-clip":
        from perovss_ros.core.labels import synthetic_clip

        path = synthetic_clip.weights_path(synthetic_clip.DEFAULT_RECIPE)
        return f"built at {path}" if path.is_file() else (
            f"not built ({path} missing; perovss models build synthetic-clip)")
    if not checkpoint:
        return "no clip_checkpoint given (an open_clip model needs its weights)"
    return f"weights at {checkpoint}" if os.path.isfile(checkpoint) else f"{checkpoint} does not exist"


def _topic_check(topic: str, seconds: float) -> Check:
    """Frames on ``topic`` over ``seconds``: how many arrived of how many the stamps say were sent."""
    from perovss_ros.ros.frame_loss import is_lossy, loss_advice
    from perovss_ros.ros.topic_arrivals import listen

    seen = listen(topic, seconds)
    est = seen.estimate
    name = f"frames on {topic}"
    if est.received == 0:
        return Check(name, f"none in {seconds:.0f} s ({seen.publishers} publisher(s)); is the camera publishing "
                           "on this ROS_DOMAIN_ID, best effort or reliable?", ok=False)
    if is_lossy(est):
        return Check(name, loss_advice(est, topic), ok=False)
    if est.period_s is None:
        return Check(name, f"{est.received} {seen.type_name} in {seconds:.0f} s; too few or irregular stamps to "
                           "tell the camera's rate")
    return Check(name, f"{est.received} of about {est.sent} frames arrived ({seen.type_name}, camera about "
                       f"{est.rate_hz:.1f} Hz from its stamps)")


def collect(config_path: str | None = None, topic: str | None = None, seconds: float = 5.0) -> list[Check]:
    """Run every check and return the report lines."""
    checks = [
        Check("perovss", _version("perovss_ros") or "source tree"),
        Check("Python", f"{platform.python_version()} ({sys.executable})"),
        Check("platform", f"{platform.system()} {platform.machine()}"),
    ]
    checks += _ros_checks()
    checks += _torch_checks()
    checks += _runtime_checks()
    checks += _backend_checks(config_path)
    if topic is not None:
        try:
            checks.append(_topic_check(topic, seconds))
        except Exception as exc:  # rclpy unusable here: the rclpy line above says why
            checks.append(Check(f"frames on {topic}", f"cannot listen: {exc}", ok=False))
    return checks


def run(args: argparse.Namespace) -> int:
    """Print the report; exit 1 when something required is broken."""
    if args.seconds <= 0:
        print("perovss doctor: --seconds must be > 0", file=sys.stderr)
        return 2
    checks = collect(args.config, args.topic, args.seconds)
    if args.json:
        print(json.dumps([c.__dict__ for c in checks], indent=2))
    else:
        width = max(len(c.topic) for c in checks)
        for c in checks:
            mark = "ok " if c.ok else "BAD"
            print(f"[{mark}] {c.topic:<{width}}  {c.value}")
    return 0 if all(c.ok for c in checks) else 1
