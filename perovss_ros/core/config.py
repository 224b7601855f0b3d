"""Pipeline configuration: one dataclass, built from a dict, a YAML file or defaults."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any

from perovss_ros.core.errors import InvalidInputError

BACKENDS = ("auto", "classic", "sam")
MODELS = ("tiny", "mobile", "vit_b", "vit_l", "vit_h")
DEVICES = ("cpu", "cuda")
# What the config accepts; a backend refuses a runtime it cannot run here (classic has no network
# and ignores it).
RUNTIMES = ("torch", "onnxruntime", "tensorrt", "auto")
LABEL_FOLLOW = ("flow", "decode")  # how named regions are carried between label frames
LABEL_REFINE_SIZE = 96  # px: default crop side of the classic proposals' GrabCut (scene_segments.refine)
MIN_REFINE_SIZE = 16  # px: the smallest crop side a GrabCut (a concept's decode or a proposal's) may run at
# px: default crop side of the classic backend's concept decodes. At 128 px a 200 px object lost its
# handle and the pale cells of its rim, and its outline then failed the identity check (README, issue 8).
DECODE_SIZE = 256


# Where the node (its ``concept_store`` parameter) keeps taught concepts across restarts. The
# library does not default to it: two scripts teaching the same name would merge their shots there.
PERSISTENT_CONCEPT_STORE = "~/.local/share/perovss/concepts"
# A track coasting longer than this would follow a prediction, not the object.
MAX_COAST_FRAMES = 30


@dataclass
class PipelineConfig:
    """Every option of ``build_pipeline`` (the node's parameters use the same keys).

    ``concept_store`` ``""``/None (the default) keeps concepts in memory only and writes nothing
    to disk; a directory (e.g. ``PERSISTENT_CONCEPT_STORE``, the node's default) persists them.
    ``presence`` False decodes every concept in every frame (no presence gate). ``identity``
    True (default) tells a concept from its look-alikes (per-concept head, candidate regions,
    outline check: ``core/decide.py``); False matches with PerSAM's cosine map alone.
    ``distractors`` True (default, with ``identity``) follows the candidate regions seen apart from a
    concept while it was plainly found, and never takes one of them for it while it is followed
    (``core/distractors.py``).
    ``light_correction`` True (default, with ``identity``) brings a frame whose light differs in colour from
    a concept's shots back to their light before its candidate regions are described
    (``core/illuminant.py``); False describes every frame as the camera gave it.
    ``turned_shots`` True (default, with ``identity``) also learns each shot turned by 90, 180 and 270
    degrees as the concept, so the head does not tell it from a look-alike by the direction of its
    pattern, and the decoder's masks of the turned shots become references of the region check; it
    encodes and decodes three more images per shot at teach time (False: teach is that much faster).
    ``track_coast_frames``: frames a concept's track is kept after the frame it was last found in
    (moved on by its last motion, its search window widened by a margin per missed frame), so an
    object hidden for a frame or two or turned down once is followed on, not searched afresh; a
    track whose predicted box is mostly outside the image is dropped at once. 0: a track ends at
    the first frame the concept is not found (before ``track_coast_frames`` existed).
    ``max_image_pixels`` bounds H*W of any input image; ``max_shots`` bounds the reference
    shots per concept.
    ``labels`` True names what is not personal with words of ``vocabulary`` (class-agnostic
    proposals labelled zero-shot by the CLIP ``clip_model``, ``synthetic-clip`` or an open_clip
    name with its ``clip_checkpoint``, every ``label_every`` frames, carried between by
    tracking: ``core/labelling.py``) and infers a taught concept's category when none is given.
    ``label_follow`` is how named regions are carried between label frames: ``flow`` (each mask
    moved along the frame's dense optical flow, a few ms a frame) or ``decode`` (one decode per
    region, prompted with its previous mask: the backend's boundary every frame, a GrabCut each
    on classic). ``label_refine_size`` is the longest side (px) of the crop the classic backend's
    GrabCut refines each scene proposal at, on label frames: smaller is faster and coarser.
    ``personal_fusion`` True (with ``labels``) also builds each taught concept's personal CLIP
    embedding and, on label frames, fuses its score with the identity's margin to publish a
    personal segment the fused evidence rejects as its generic category (``core/labels/personal.py``;
    off by default: on the hard sim scenes with the synthetic CLIP it lowered IoU^per and had no
    look-alike false positive to remove, README "Open-vocabulary figures").
    """

    backend: str = "auto"
    model: str = "vit_b"
    checkpoint: str = ""
    device: str = "cpu"
    runtime: str = "auto"  # the sam backend's fastest runtime here (sam/backend.py resolve_runtime)
    decode_threads: int = 0  # classic: GrabCut decodes of one call at once; 0 = CPU count, at most 4
    decode_size: int = DECODE_SIZE  # classic: longest side (px) of the crop a concept's GrabCut runs at
    concept_store: str | None = None
    seed: int = 0
    presence: bool = True
    identity: bool = True
    distractors: bool = True
    light_correction: bool = True
    turned_shots: bool = True
    track_coast_frames: int = 3
    max_image_pixels: int = 4096 * 4096
    max_shots: int = 32
    cascade: str = "full"  # full | adaptive: skip refinement 2 for tracked concepts that agree with their track
    persam_bias: str = "aligned"  # aligned | official (reference code: bias stretched over the padded grid)
    labels: bool = False
    clip_model: str = "synthetic-clip"
    clip_checkpoint: str = ""
    vocabulary: list[str] = dataclasses.field(default_factory=list)
    label_every: int = 5
    label_follow: str = "flow"
    label_refine_size: int = LABEL_REFINE_SIZE
    personal_fusion: bool = False

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise InvalidInputError naming the first bad value."""
        _choice("backend", self.backend, BACKENDS)
        _choice("model", self.model, MODELS)
        _choice("device", self.device, DEVICES)
        _choice("runtime", self.runtime, RUNTIMES)
        _choice("cascade", self.cascade, ("full", "adaptive"))
        _choice("persam_bias", self.persam_bias, ("aligned", "official"))
        if not isinstance(self.checkpoint, str | os.PathLike):
            raise InvalidInputError(f"config 'checkpoint' must be a path string, got {self.checkpoint!r}")
        self.checkpoint = os.fspath(self.checkpoint)
        if self.concept_store is not None:
            if not isinstance(self.concept_store, str | os.PathLike):
                raise InvalidInputError(
                    f"config 'concept_store' must be a directory path, '' or null, got {self.concept_store!r}"
                )
            self.concept_store = os.fspath(self.concept_store)
        for key in ("seed", "max_image_pixels", "max_shots", "track_coast_frames", "decode_threads", "decode_size"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidInputError(f"config '{key}' must be an integer, got {value!r}")
        if self.decode_threads < 0:
            raise InvalidInputError(f"config 'decode_threads' must be >= 0 (0 = the CPU count), "
                                    f"got {self.decode_threads}")
        if self.decode_size < MIN_REFINE_SIZE:
            raise InvalidInputError(f"config 'decode_size' must be >= {MIN_REFINE_SIZE} px, got {self.decode_size}")
        if self.max_image_pixels < 1 or self.max_shots < 1:
            raise InvalidInputError("config 'max_image_pixels' and 'max_shots' must be >= 1")
        if not 0 <= self.track_coast_frames <= MAX_COAST_FRAMES:
            raise InvalidInputError(f"config 'track_coast_frames' must be 0..{MAX_COAST_FRAMES}, "
                                    f"got {self.track_coast_frames}")
        check_label_options(self.label_every, self.label_follow, self.label_refine_size)
        for key in ("clip_model", "clip_checkpoint"):
            if not isinstance(getattr(self, key), str | os.PathLike):
                raise InvalidInputError(f"config '{key}' must be a string, got {getattr(self, key)!r}")
            setattr(self, key, os.fspath(getattr(self, key)))
        if not self.clip_model:
            raise InvalidInputError("config 'clip_model' must name a CLIP (e.g. 'synthetic-clip')")
        if not isinstance(self.vocabulary, list | tuple) or not all(isinstance(w, str) for w in self.vocabulary):
            raise InvalidInputError(f"config 'vocabulary' must be a list of words, got {self.vocabulary!r}")
        self.vocabulary = list(self.vocabulary)
        for key in ("presence", "identity", "distractors", "light_correction", "turned_shots", "labels",
                    "personal_fusion"):
            if not isinstance(getattr(self, key), bool):
                raise InvalidInputError(f"config '{key}' must be true or false, got {getattr(self, key)!r}")

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        """The accepted configuration keys."""
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> PipelineConfig:
        """Build from a mapping; an unknown key raises InvalidInputError naming it."""
        if not isinstance(values, dict):
            raise InvalidInputError(f"config must be a mapping, got {type(values).__name__}")
        unknown = sorted(set(values) - set(cls.keys()))
        if unknown:
            raise InvalidInputError(
                f"unknown config key(s) {', '.join(map(repr, unknown))}; accepted: {', '.join(cls.keys())}"
            )
        return cls(**values)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> PipelineConfig:
        """Load a YAML mapping of config keys from ``path``."""
        import yaml

        try:
            with open(path, encoding="utf-8") as handle:
                values = yaml.safe_load(handle)
        except OSError as exc:
            raise InvalidInputError(f"cannot read config file {path}: {exc}") from exc
        except yaml.YAMLError as exc:
            raise InvalidInputError(f"config file {path} is not valid YAML: {exc}") from exc
        return cls.from_dict(values or {})

    @classmethod
    def coerce(cls, config: PipelineConfig | dict | str | os.PathLike | None) -> PipelineConfig:
        """Accept a PipelineConfig, a dict, a YAML path or None (defaults)."""
        if config is None:
            return cls()
        if isinstance(config, PipelineConfig):
            config.validate()
            return config
        if isinstance(config, dict):
            return cls.from_dict(config)
        if isinstance(config, str | os.PathLike):
            return cls.from_yaml(config)
        raise InvalidInputError(
            f"config must be a dict, a YAML path, a PipelineConfig or None, got {type(config).__name__}"
        )


def check_label_options(label_every: object, follow: object, refine_size: object) -> None:
    """InvalidInputError unless ``label_every`` is an integer >= 1, ``follow`` one of ``LABEL_FOLLOW`` and
    ``refine_size`` an integer >= ``MIN_REFINE_SIZE`` px (the config's and ``SceneLabeller``'s check)."""
    for key, value, least in (("label_every", label_every, 1), ("label_refine_size", refine_size, MIN_REFINE_SIZE)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidInputError(f"config '{key}' must be an integer, got {value!r}")
        if value < least:
            raise InvalidInputError(f"config '{key}' must be >= {least}, got {value!r}")
    _choice("label_follow", follow, LABEL_FOLLOW)


def _choice(key: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise InvalidInputError(f"config '{key}' must be one of {', '.join(allowed)}; got {value!r}")
