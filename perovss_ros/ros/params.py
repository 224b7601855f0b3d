"""The node's parameters: one table for declaration, validation and the launch file.

``config/perovss.yaml`` documents the same keys and defaults (a test keeps them
equal); ``launch/perovss.launch.py`` reads its defaults from that YAML and its
descriptions and choices from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from perovss_ros.core.config import (
    BACKENDS,
    DECODE_SIZE,
    DEVICES,
    LABEL_FOLLOW,
    LABEL_REFINE_SIZE,
    MAX_COAST_FRAMES,
    MIN_REFINE_SIZE,
    MODELS,
    PERSISTENT_CONCEPT_STORE,
    RUNTIMES,
)

# When a parameter takes effect; a change while the node is past that point is refused.
CONFIGURE = "configure"  # read when the pipeline is built (on_configure)
ACTIVATE = "activate"  # read when subscriptions are made (on_activate)
LIVE = "live"  # read on every frame / tick


@dataclass(frozen=True)
class ParamSpec:
    """One node parameter: default (its type is the parameter's type), help text, allowed values."""

    name: str
    default: Any
    description: str
    choices: tuple[str, ...] = ()
    applies: str = CONFIGURE
    pipeline_key: bool = False  # passed to build_pipeline under the same name


PARAMETERS: tuple[ParamSpec, ...] = (
    ParamSpec("backend", "auto", "segmentation backend; auto = sam when a checkpoint for `model` is found, "
              "else classic", BACKENDS, pipeline_key=True),
    ParamSpec("model", "vit_b", "SAM model variant (tiny = seeded random weights, for tests)",
              MODELS, pipeline_key=True),
    ParamSpec("checkpoint", "", "checkpoint path; empty = default model directory ($PEROVSS_MODEL_DIR "
              "or ~/.cache/perovss/models)", pipeline_key=True),
    ParamSpec("device", "cpu", "torch device", DEVICES, pipeline_key=True),
    ParamSpec("runtime", "auto", "inference runtime", RUNTIMES, pipeline_key=True),
    ParamSpec("decode_threads", 0, "classic backend: GrabCut decodes (one per concept or scene proposal) run at "
              "once on this many threads; 0 = the CPU count, at most 4; masks do not depend on it",
              pipeline_key=True),
    ParamSpec("decode_size", DECODE_SIZE, "classic backend: longest side (px) of the crop each concept's GrabCut "
              "decode runs at; smaller is faster and loses thin parts", pipeline_key=True),
    ParamSpec("concept_store", PERSISTENT_CONCEPT_STORE,
              "directory where taught concepts persist (the node's default; build_pipeline() alone keeps "
              "them in memory); empty = in memory only", pipeline_key=True),
    ParamSpec("seed", 0, "random seed (tiny SAM weights, sampling)", pipeline_key=True),
    ParamSpec("presence", True, "per-concept presence gate (false: decode every concept every frame)",
              pipeline_key=True),
    ParamSpec("identity", True, "tell taught objects from look-alikes (per-concept head, candidates, outline "
              "check); false = PerSAM's cosine map alone", pipeline_key=True),
    ParamSpec("distractors", True, "with identity: follow the look-alikes seen beside a taught object while it "
              "was plainly found, and never take one of them for it while it is followed", pipeline_key=True),
    ParamSpec("light_correction", True, "with identity: bring a frame whose light differs in colour from a taught "
              "object's shots (a warm lamp after daylight) back to their light before its colours are compared",
              pipeline_key=True),
    ParamSpec("turned_shots", True, "with identity: also learn each teach shot turned by 90, 180 and 270 degrees "
              "(three more encodes and decodes per shot at teach time), so a pattern's direction does not "
              "decide identity and the region check knows the decoder's masks of the object at other angles",
              pipeline_key=True),
    ParamSpec("track_coast_frames", 3, "frames a taught object's track is kept after the frame it was last "
              "found in (moved by its last motion, search window widened), so one missed frame does not end "
              "it; 0 = a track ends at the first miss", pipeline_key=True),
    ParamSpec("cascade", "full", "decode cascade: full, or adaptive (skip refinement 2 for a tracked concept "
              "whose mask agrees with its track)", ("full", "adaptive"), pipeline_key=True),
    ParamSpec("max_image_pixels", 4096 * 4096, "largest accepted image (width×height), frames and "
              "teaching images", pipeline_key=True),
    ParamSpec("max_shots", 32, "most reference shots per concept (and images per teach request)",
              pipeline_key=True),
    ParamSpec("labels", False, "name what is not personal with words of the vocabulary (scene proposals "
              "labelled zero-shot by the CLIP clip_model) and infer a taught concept's category",
              pipeline_key=True),
    ParamSpec("clip_model", "synthetic-clip", "CLIP of the labels: synthetic-clip (built by `perovss models build "
              "synthetic-clip`; knows only the synthetic world) or an open_clip name with clip_checkpoint",
              pipeline_key=True),
    ParamSpec("clip_checkpoint", "", "weights of an open_clip clip_model (safetensors or a state dict); "
              "unused for synthetic-clip", pipeline_key=True),
    ParamSpec("vocabulary", "", "starting words of the labels, comma-separated (\"mug, ball\"); "
              "~/set_vocabulary replaces them at run time", pipeline_key=True),
    ParamSpec("label_every", 5, "label the scene every N frames; labels are carried between by tracking",
              pipeline_key=True),
    ParamSpec("label_follow", "flow", "how named regions are carried between label frames: flow (moved along "
              "the dense optical flow, a few ms) or decode (a decode per region: a GrabCut each on classic)",
              LABEL_FOLLOW, pipeline_key=True),
    ParamSpec("label_refine_size", LABEL_REFINE_SIZE, "classic backend: longest side (px) of the crop each "
              "scene proposal's GrabCut runs at on label frames; smaller is faster and coarser", pipeline_key=True),
    ParamSpec("personal_fusion", False, "with labels: fuse a taught concept's personal CLIP embedding with the "
              "identity on label frames and publish a rejected personal segment as its category",
              pipeline_key=True),
    ParamSpec("image_transport", "raw", "subscribe to `image` (sensor_msgs/Image) or `image/compressed` "
              "(sensor_msgs/CompressedImage, jpeg/png)", ("raw", "compressed"), applies=ACTIVATE),
    ParamSpec("reliability", "best_effort", "QoS reliability of the image subscription (depth 1); "
              "best_effort accepts every camera", ("best_effort", "reliable"), applies=ACTIVATE),
    ParamSpec("publish_overlay", True, "draw masks, boxes and labels on ~/overlay while it has subscribers",
              applies=LIVE),
    ParamSpec("autostart", True, "configure and activate at start (false: wait for a lifecycle manager)",
              applies=LIVE),
    ParamSpec("diagnostics_period", 1.0, "seconds between /diagnostics messages", applies=ACTIVATE),
    ParamSpec("capture_timeout", 10.0, "seconds a live-capture teach request waits for its frames",
              applies=LIVE),
)

BY_NAME: dict[str, ParamSpec] = {p.name: p for p in PARAMETERS}


def defaults() -> dict[str, Any]:
    """``{name: default}`` for every parameter."""
    return {p.name: p.default for p in PARAMETERS}


def check_value(name: str, value: Any) -> str | None:
    """Return why ``value`` is not acceptable for parameter ``name``, or None if it is."""
    spec = BY_NAME.get(name)
    if spec is None:
        return None  # not ours (e.g. use_sim_time)
    if spec.choices and value not in spec.choices:
        return f"{name} must be one of {', '.join(spec.choices)}, got {value!r}"
    if name in ("max_image_pixels", "max_shots", "label_every") and int(value) < 1:
        return f"{name} must be >= 1, got {value!r}"
    if name == "track_coast_frames" and not 0 <= int(value) <= MAX_COAST_FRAMES:
        return f"{name} must be 0..{MAX_COAST_FRAMES}, got {value!r}"
    if name in ("label_refine_size", "decode_size") and int(value) < MIN_REFINE_SIZE:
        return f"{name} must be >= {MIN_REFINE_SIZE}, got {value!r}"
    if name in ("diagnostics_period", "capture_timeout") and float(value) <= 0:
        return f"{name} must be > 0, got {value!r}"
    return None


def split_words(text: str) -> list[str]:
    """The words of a comma-separated ``vocabulary`` parameter, stripped, empty ones dropped."""
    return [word.strip() for word in text.split(",") if word.strip()]
