"""Open-vocabulary labels for what is not personal: scene proposals, named every N frames, tracked between.

``SceneLabeller.step`` is the last step of ``Pipeline.process``. On a label frame (every
``label_every``-th, and the first after a vocabulary change) the scene is proposed afresh outside
the personal segments' pixels (``core/scene_segments.py``), every proposal is labelled with the
RegionLabeller, and proposals are matched to the previous regions by mask IoU (greedy, best
pair first, at least ``MATCH_IOU``) so that a region keeps its instance id (from
``GENERIC_ID_MIN`` up, above the personal range). In between, only the labelled regions are
followed, carrying id and label, with no proposals and no CLIP. ``follow`` ``flow`` (default)
moves each region's mask along the frame's dense optical flow (``core/region_flow.py``: one DIS
flow a frame, a fitted rotation/scale/shift per region), so those frames cost a few ms whatever
the backend; ``decode`` runs one batched decode prompted with each region's innermost pixel and its
box grown by ``FOLLOW_MARGIN`` px (``follow_regions``): the backend's boundary every frame, but a
GrabCut per region on classic. With flow, every frame's previous regions are moved before they
are matched or followed. The classic proposals are refined by ``proposal_refiner``: the backend's
GrabCut at ``refine_size`` px (config ``label_refine_size``). Regions the labeller leaves unlabelled
("none of these") are not published. A region lost for more than ``MAX_MISSES`` frames is
forgotten; new objects appear at the next label frame.

A same-category look-alike of a personal concept is not the concept (the identity decided,
its pixels are not personal), so it is proposed and labelled like any other region.

Personal concepts with a category get a ``PersonalEmbedding`` at teach time
(``personal_embedding``: the category's text embedding with the shots' masked visual embedding
injected, and as negatives the teach frames' proposals the labeller names with that category).
On a label frame each personal segment of such a concept (``PersonalCheck``) is embedded in the
same batch as the proposals, and its CLIP score is fused with the identity's margin
(``labels/personal.py``); a segment the fused evidence rejects is published as a generic region
of the concept's category (``personal: false``) and its concept is returned as demoted, so the
pipeline forgets its track and the next frame searches again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from perovss_ros.core.config import LABEL_REFINE_SIZE, PipelineConfig, check_label_options
from perovss_ros.core.errors import InvalidInputError
from perovss_ros.core.matching import mask_iou, tight_box
from perovss_ros.core.protocols import MaskDecoder
from perovss_ros.core.region_flow import RegionFlow, carry_masks
from perovss_ros.core.scene_segments import (
    GENERIC_ID_MAX,
    GENERIC_ID_MIN,
    follow_regions,
    proposal_refiner,
    propose_regions,
    settle,
)
from perovss_ros.core.types import Features, Segment

if TYPE_CHECKING:  # the labels package pulls in open_clip: loaded only when labelling is on
    from perovss_ros.core.labels import RegionLabeller
    from perovss_ros.core.labels.personal import PersonalEmbedding
    from perovss_ros.core.labels.zero_shot import RegionLabel

MATCH_IOU = 0.3
MAX_MISSES = 2
FOLLOW_MARGIN = 12.0  # px a region followed by a decode may move between frames
log = logging.getLogger(__name__)


@dataclass
class _Region:
    """A tracked generic region: its id, last mask (``H×W bool``), label (None: none of the words)."""

    instance_id: int
    mask: np.ndarray
    label: str | None
    score: float
    misses: int = 0


@dataclass(frozen=True)
class PersonalCheck:
    """A personal segment of this frame: concept ``name``, its ``instance_id``, ``mask`` (``H×W bool``) and the
    identity's ``margin`` (``FrameDecision.margins``; None without an identity model)."""

    name: str
    instance_id: int
    mask: np.ndarray
    margin: float | None


def build_region_labeller(config: PipelineConfig) -> RegionLabeller:
    """The RegionLabeller of ``config`` (``clip_model``, ``clip_checkpoint``, ``vocabulary``); CheckpointError
    naming what to build or place when the CLIP's weights are missing."""
    from perovss_ros.core.labels import RegionLabeller, build_clip_encoder

    encoder = build_clip_encoder(config.clip_model, checkpoint=config.clip_checkpoint or None, device=config.device)
    return RegionLabeller(encoder, vocabulary=config.vocabulary)


def match_regions(previous: Sequence[np.ndarray], current: Sequence[np.ndarray],
                  min_iou: float = MATCH_IOU) -> dict[int, int]:
    """Greedy one-to-one matching ``{current index: previous index}`` of ``H×W bool`` masks by IoU ≥ ``min_iou``."""
    pairs = sorted(((mask_iou(p, c), ci, pi) for pi, p in enumerate(previous) for ci, c in enumerate(current)),
                   reverse=True)
    matched: dict[int, int] = {}
    used: set[int] = set()
    for iou, ci, pi in pairs:
        if iou < min_iou:
            break
        if ci not in matched and pi not in used:
            matched[ci] = pi
            used.add(pi)
    return matched


class SceneLabeller:
    """Generic segments of a frame (see the module docstring); ``labeller`` may change vocabulary any time."""

    def __init__(self, labeller: RegionLabeller, label_every: int = 5, follow: str = "flow",
                 refine_size: int = LABEL_REFINE_SIZE) -> None:
        check_label_options(label_every, follow, refine_size)
        self.labeller = labeller
        self.label_every = label_every
        self.follow = follow
        self.refine_size = refine_size
        self._flow = RegionFlow() if follow == "flow" else None
        self._refiner: tuple[MaskDecoder, MaskDecoder] | None = None  # (backend decoder, its proposal refiner)
        self._regions: list[_Region] = []
        self._frames = 0
        self._vocabulary: tuple[str, ...] = ()  # what the carried labels were chosen from
        self._personal: dict[str, PersonalEmbedding] = {}  # concept name -> its embedding (replaced whole)
        self._lock = threading.Lock()  # reset (service thread) against step (worker thread)

    @property
    def model_id(self) -> str:
        """The CLIP's model id."""
        return self.labeller.model_id

    def reset(self) -> None:
        """Forget the tracked regions; the next frame is labelled afresh."""
        with self._lock:
            self._regions = []
            self._frames = 0
            if self._flow is not None:
                self._flow.reset()

    def set_personal(self, name: str, embedding: PersonalEmbedding | None) -> None:
        """Use ``embedding`` for concept ``name`` from the next label frame on (None: no personal check)."""
        personal = {k: v for k, v in self._personal.items() if k != name}
        if embedding is not None:
            personal[name] = embedding
        self._personal = personal  # one assignment: step() sees the old or the new dict

    def has_personal(self, name: str) -> bool:
        """Whether concept ``name`` has a personal embedding (its segments are checked on label frames)."""
        return name in self._personal

    def start_frame(self, rgb: np.ndarray) -> None:
        """Begin this ``H×W×3 uint8 RGB`` frame's optical flow in the background (``follow`` ``flow``); the
        ``step`` on the same array collects it."""
        if self._flow is not None and self.labeller.vocabulary:  # no words: step() labels nothing
            self._flow.start(rgb)

    def refiner(self, decoder: MaskDecoder) -> MaskDecoder:
        """The decoder refining ``decoder``'s scene proposals at ``refine_size`` (``proposal_refiner``, built once)."""
        if self._refiner is None or self._refiner[0] is not decoder:
            self._refiner = (decoder, proposal_refiner(decoder, self.refine_size))
        return self._refiner[1]

    def infer_category(self, images: Sequence[np.ndarray], masks: Sequence[np.ndarray]) -> str:
        """The category word of a taught concept from its shots (``""`` when no word fits or no vocabulary)."""
        if not self.labeller.vocabulary:
            return ""
        return self.labeller.infer_category(images, masks).label or ""

    def step(self, decoder: MaskDecoder, features: Features, rgb: np.ndarray, owned: np.ndarray,
             personal: Sequence[PersonalCheck] = ()) -> tuple[list[Segment], list[str]]:
        """Label one frame: paints the generic segments' ids into ``owned`` (``H×W uint16``, personal ids
        already in it; only its 0 pixels are used) and returns those segments (``personal=False``) and the
        concepts of ``personal`` demoted to their category on this frame (their pixels are generic now)."""
        demoted: list[str] = []
        with self._lock:
            vocabulary = self.labeller.vocabulary
            if not vocabulary:
                self._regions = []
                return [], demoted
            if self._regions and self._regions[0].mask.shape != owned.shape:
                self._regions, self._frames = [], 0  # another image size: nothing carries over
            # A new vocabulary relabels at once: carried labels may be words that are gone.
            label_frame = self._frames % self.label_every == 0 or vocabulary != self._vocabulary
            self._frames += 1
            self._vocabulary = vocabulary
            if not label_frame:  # only named regions are followed
                self._regions = [r for r in self._regions if r.label is not None]
            flow = self._flow.advance(rgb) if self._flow is not None else None
            if flow is not None:  # the previous regions where they are now: matched and carried from there
                moved_masks = carry_masks([r.mask for r in self._regions], flow)
                for region, moved in zip(self._regions, moved_masks, strict=True):
                    region.mask = moved
            if label_frame:
                regions, demoted = self._label_frame(decoder, features, rgb, owned, personal)
            else:
                regions = self._follow(decoder, features, rgb, owned)
            self._regions = regions
        segments = []
        for region in regions:
            if region.misses or region.label is None:
                continue
            owned[region.mask] = region.instance_id
            segments.append(Segment(label=region.label, instance_id=region.instance_id,
                                    score=float(np.clip(region.score, 0.0, 1.0)), box_xyxy=tight_box(region.mask),
                                    personal=False, category=region.label))
        return segments, demoted

    def _label_frame(self, decoder: MaskDecoder, features: Features, rgb: np.ndarray, owned: np.ndarray,
                     personal: Sequence[PersonalCheck]) -> tuple[list[_Region], list[str]]:
        """Propose, label everything, keep the ids of the regions matched to the previous ones; check the
        personal segments (see the module docstring) and return the regions and the demoted concepts."""
        from perovss_ros.core.labels.personal import keep_personal

        masks = [p.mask for p in propose_regions(decoder, features, rgb, owned > 0, self.refiner(decoder))]
        embeddings = self._personal
        checks = [c for c in personal if c.name in embeddings and c.mask.any()]
        matched = match_regions([r.mask for r in self._regions], masks)
        classifier = self.labeller.classifier  # one vocabulary for the whole frame
        everything = masks + [c.mask for c in checks]
        # One batch for proposals and personal segments: an encoder with dense features pays one pass.
        vectors = self.labeller.region_embeddings(rgb, np.stack(everything)) if everything else None
        answers: list[RegionLabel] = classifier.classify(vectors[:len(masks)]) if masks else []
        used = {self._regions[pi].instance_id for pi in matched.values()}
        regions: list[_Region] = []
        demoted: list[str] = []
        for check, vector in zip(checks, vectors[len(masks):] if checks else [], strict=True):
            embedding = embeddings[check.name]
            probability = float(embedding.probability(vector)[0])
            if keep_personal(probability, check.margin):
                continue
            demoted.append(check.name)
            instance_id = self._next_id(used)
            used.add(instance_id)
            # Its concept is not in view here: the pixels are a thing of its category, not labelled twice.
            regions.append(_Region(instance_id, check.mask, embedding.category, 1.0 - probability))
        for i, (mask, answer) in enumerate(zip(masks, answers, strict=True)):
            if i in matched:
                instance_id = self._regions[matched[i]].instance_id
            else:
                instance_id = self._next_id(used)
                used.add(instance_id)
            regions.append(_Region(instance_id, mask, answer.label, float(answer.score)))
        for pi, old in enumerate(self._regions):  # briefly unseen named regions keep their id and label
            if (pi not in matched.values() and old.label is not None and old.misses < MAX_MISSES
                    and old.instance_id not in used):
                regions.append(_Region(old.instance_id, old.mask, old.label, old.score, old.misses + 1))
        return regions, demoted

    def _follow(self, decoder: MaskDecoder, features: Features, rgb: np.ndarray, owned: np.ndarray) -> list[_Region]:
        """Carry the named regions into this frame (their id and label), dropping those lost too long."""
        named = self._regions  # step() kept the named ones
        masks = [r.mask for r in named]
        if self.follow == "decode":
            followed = follow_regions(decoder, features, rgb, masks, owned > 0, FOLLOW_MARGIN)
        else:  # step() already moved the masks along the flow
            followed = settle(masks, owned > 0)
        regions = []
        for old, mask in zip(named, followed, strict=True):
            if mask is not None:
                regions.append(_Region(old.instance_id, mask, old.label, old.score))
            elif old.misses < MAX_MISSES:
                regions.append(_Region(old.instance_id, old.mask, old.label, old.score, old.misses + 1))
        return regions

    def _next_id(self, used: set[int]) -> int:
        """The lowest free generic id, so ids stay small and a frame never repeats one."""
        for candidate in range(GENERIC_ID_MIN, GENERIC_ID_MAX + 1):
            if candidate not in used:
                return candidate
        raise InvalidInputError("no free generic instance id left")


def scene_labeller_for(config: PipelineConfig, labeller: RegionLabeller | None = None) -> SceneLabeller | None:
    """The SceneLabeller of ``config`` (None when ``labels`` is off); ``labeller`` replaces the configured CLIP."""
    if not config.labels:
        return None
    if labeller is None:
        labeller = build_region_labeller(config)
    elif config.vocabulary:
        labeller.set_vocabulary(config.vocabulary)
    return SceneLabeller(labeller, config.label_every, config.label_follow, config.label_refine_size)


def check_category(category: object) -> str:
    """A teach call's category word, stripped (``""`` = none given); InvalidInputError for a bad one."""
    from perovss_ros.core.labels.prompts import check_labels

    if not isinstance(category, str):
        raise InvalidInputError(f"category must be a word (string), got {category!r}")
    return check_labels([category])[0] if category.strip() else ""


def teach_category(scene: SceneLabeller | None, given: str, previous: str | None,
                   images: Sequence[np.ndarray], masks: Sequence[np.ndarray]) -> tuple[str, str]:
    """``(category, source)`` of a taught concept: the given word, else the earlier concept's (``previous``),
    else inferred from its shots (``H×W×3 uint8 RGB`` images, ``H×W bool`` masks) when labelling is on.

    ``source`` is ``given``, ``kept``, ``inferred`` or ``none`` (TeachResult.category_source).
    """
    if given:
        return given, "given"
    if previous:
        return previous, "kept"
    if scene is None:
        return "", "none"
    word = scene.infer_category(images, masks)
    return (word, "inferred") if word else ("", "none")


def personal_embedding(scene: SceneLabeller, decoder: MaskDecoder, features: Sequence[Features],
                       images: Sequence[np.ndarray], masks: Sequence[np.ndarray], category: str
                       ) -> PersonalEmbedding:
    """A taught concept's ``PersonalEmbedding`` from its shots (``H×W×3 uint8 RGB`` images, their ``features``
    and ``H×W bool`` masks) and its ``category`` word.

    Negatives: in every shot image, the scene proposals outside the shot's mask (``propose_regions`` drops
    those that overlap it) that the labeller names ``category``: same-category things that are not it.
    """
    import torch

    from perovss_ros.core.labels.personal import PersonalEmbedding

    labeller = scene.labeller
    classifier = labeller.classifier
    shots, negatives = [], []
    with torch.no_grad():
        for rgb, f, mask in zip(images, features, masks, strict=True):
            others = [p.mask for p in propose_regions(decoder, f, rgb, mask, scene.refiner(decoder))]
            # The shot and its scene's proposals in one batch (one dense pass where the encoder has one).
            vectors = labeller.region_embeddings(rgb, np.stack([mask, *others]))
            shots.append(vectors[0])
            for answer, vector in zip(classifier.classify(vectors[1:]) if others else [], vectors[1:], strict=True):
                if answer.label == category:
                    negatives.append(vector)
    dim = len(shots[0])
    return PersonalEmbedding.build(category, labeller.text_embeddings([category])[0], np.stack(shots),
                                   np.stack(negatives) if negatives else np.zeros((0, dim), np.float32),
                                   float(labeller.encoder.logit_scale))


def finish_frame(scene: SceneLabeller | None, categories: dict[str, str], decoder: MaskDecoder,
                 features: Features, rgb: np.ndarray, owned: np.ndarray, segments: list[Segment],
                 timings: dict[str, float], margins: dict[str, float | None] | None = None
                 ) -> tuple[list[Segment], list[str]]:
    """The personal ``segments`` with their concepts' ``categories`` (name -> word), then the generic ones,
    and the concepts demoted on this frame (their segments left out, their pixels generic).

    ``owned`` (``H×W uint16``) gets the generic segments' ids; ``timings["label"]`` their cost (s);
    ``margins``: each segment's identity margin by concept name (missing: None).
    """
    import time

    for seg in segments:
        seg.category = categories.get(seg.label, "")
    if scene is None:
        return segments, []
    import torch

    margins = margins or {}
    checks = [PersonalCheck(s.label, s.instance_id, owned == s.instance_id, margins.get(s.label))
              for s in segments if scene.has_personal(s.label)]
    tick = time.perf_counter()
    with torch.no_grad():  # process() leaves its no_grad block before this last step
        generic, demoted = scene.step(decoder, features, rgb, owned, checks)
    timings["label"] = time.perf_counter() - tick
    return [s for s in segments if s.label not in demoted] + generic, demoted
