"""The perception pipeline: teach concepts, then find, segment and follow them in every frame.

Per frame: encode once -> match all concepts in one matmul -> presence gate -> PerSAM points,
guidance and tracking prompts -> one batched decode cascade -> one owner per pixel.
Concepts live in an immutable dict that teach/forget replace under a short lock, so
``process`` (worker thread) never sees a half-made concept and never waits for a teach.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from perovss_ros.core import decide, labelling, matching, presence
from perovss_ros.core.cascade import CascadeRequest, decoder_has_logits, run_cascade
from perovss_ros.core.concept import Concept, Shot, validate_name
from perovss_ros.core.config import PipelineConfig
from perovss_ros.core.distractors import DistractorMemory
from perovss_ros.core.errors import (
    ConceptStoreError,
    InvalidInputError,
    PerovssError,
    UnknownConceptError,
)
from perovss_ros.core.identity import IDENTITY_FIT_VERSION, IdentityFit
from perovss_ros.core.instances import resolve_instances
from perovss_ros.core.memory import ConceptMemory
from perovss_ros.core.protocols import ImageEncoder, MaskDecoder
from perovss_ros.core.scene_segments import PERSONAL_ID_MAX
from perovss_ros.core.tracker import Tracker, box_centre, expand_box
from perovss_ros.core.types import (
    BoxXYXY,
    ConceptInfo,
    Features,
    FrameResult,
    Guidance,
    Prompts,
    Segment,
    TeachResult,
)
from perovss_ros.core.validation import check_box, check_image, check_mask

if TYPE_CHECKING:
    from perovss_ros.core.labels import RegionLabeller

log = logging.getLogger(__name__)

# A grid cell belongs to the reference object when the mask covers at least this fraction of it.
CELL_COVERAGE = 0.5
MAX_INSTANCE_ID = PERSONAL_ID_MAX  # the ids above are the generic segments' (core/scene_segments.py)


@dataclass
class _Found:
    """What ``_segment`` found: per concept an owned ``H×W bool`` mask (None = not found) and scores.

    ``margins``: per concept the identity's margin of its mask (``FrameDecision.margins``), None on the
    path without identity.
    """

    masks: list[np.ndarray | None]
    presence: list[float]
    decode_scores: list[float]
    margins: list[float | None] | None = None


class Pipeline:
    """Personal-object segmentation behind the public API (see the package docstring).

    Build with ``build_pipeline``; ``encoder``/``decoder`` implement the core protocols.
    ``labeller`` replaces the CLIP that config ``labels`` would load (``core/labelling.py``).
    """

    def __init__(
        self,
        config: PipelineConfig,
        encoder: ImageEncoder,
        decoder: MaskDecoder,
        backend_name: str,
        memory: ConceptMemory | None = None,
        labeller: RegionLabeller | None = None,
    ) -> None:
        self.config = config
        self.encoder = encoder
        self.decoder = decoder
        self.backend_name = backend_name
        self.model_id: str = encoder.model_id
        self.memory = memory
        self._concepts: dict[str, Concept] = {}
        self._swap_lock = threading.Lock()  # guards the _concepts swap and the tracker (short holds)
        self._teach_lock = threading.Lock()  # serialises teach/forget: ids, store writes
        self._tracker = Tracker(self.config.track_coast_frames)
        self._distractors: dict[str, DistractorMemory] = {}  # per concept, under _swap_lock like the tracker
        self.scene = labelling.scene_labeller_for(config, labeller)  # None: labelling off
        # Diagnosis (``perovss bench core --explain``): when True, each frame's identity decision keeps
        # its decoded candidates in ``identity_trace`` (name -> CandidateTrace list); off on the node.
        self.record_identity_trace = False
        self.identity_trace: dict[str, list[decide.CandidateTrace]] = {}

    # ---------------------------------------------------------------- public API

    def concepts(self) -> list[ConceptInfo]:
        """Summaries of the taught concepts, ordered by instance id."""
        return [c.info() for c in sorted(self._concepts.values(), key=lambda c: c.instance_id)]

    def forget(self, name: str) -> None:
        """Remove concept ``name`` from memory and store; UnknownConceptError if it is not taught."""
        validate_name(name)
        with self._teach_lock:
            if name not in self._concepts:
                taught = ", ".join(sorted(self._concepts)) or "none"
                raise UnknownConceptError(f"no concept named {name!r}; taught: {taught}")
            if self.memory is not None:
                self.memory.delete(name)
            with self._swap_lock:
                self._concepts = {k: v for k, v in self._concepts.items() if k != name}
                self._tracker.forget(name)
                self._distractors.pop(name, None)
            if self.scene is not None:
                self.scene.set_personal(name, None)

    def reset_tracking(self) -> None:
        """Forget every concept's last box; the next frame searches globally."""
        with self._swap_lock:
            self._tracker.reset()
            self._distractors.clear()
        if self.scene is not None:
            self.scene.reset()

    @property
    def vocabulary(self) -> tuple[str, ...]:
        """The words generic segments are labelled with (empty when labelling is off)."""
        return self.scene.labeller.vocabulary if self.scene is not None else ()

    def set_vocabulary(self, labels: Sequence[str]) -> None:
        """Label generic segments with ``labels`` from the next frame on; InvalidInputError for bad
        words or when labelling is off (config ``labels``)."""
        if self.scene is None:
            raise InvalidInputError("labelling is off (config 'labels' false); turn it on to set a vocabulary")
        self.scene.labeller.set_vocabulary(labels)

    def judge_region(self, name: str, rgb: np.ndarray, mask: np.ndarray) -> tuple[float, float] | None:
        """``(distance, limit)`` of concept ``name``'s region check on an ``H×W bool`` ``mask`` of the ``H×W×3
        uint8 RGB`` frame ``rgb``, judged as a new detection (``decide.judge_region``); None for a concept
        without a region check (identity off). For diagnosis; UnknownConceptError if ``name`` is not taught,
        InvalidInputError for a bad image or a mask that is empty or not the image's size."""
        validate_name(name)
        rgb = check_image(rgb, self.config.max_image_pixels)
        mask = check_mask(mask, rgb.shape[:2])
        with self._swap_lock:
            concept = self._concepts.get(name)
        if concept is None:
            raise UnknownConceptError(f"no concept named {name!r}")
        cues = concept.identity.cues if concept.identity is not None else None
        if cues is None:
            return None
        return decide.judge_region(mask, rgb, cues, self.config.light_correction)

    def process(self, rgb: np.ndarray) -> FrameResult:
        """Find every taught concept in an ``H×W×3 uint8 RGB`` frame.

        Returns ``FrameResult``: ``instance_mask`` ``H×W uint16`` (0 none, else instance id),
        segments of the concepts present, per-stage ``timings`` (s) and every concept's presence score.
        """
        start = time.perf_counter()
        rgb = check_image(rgb, self.config.max_image_pixels)
        if self.scene is not None:  # its optical flow runs while the concepts are found
            self.scene.start_frame(rgb)
        concepts = list(self._concepts.values())  # one atomic read: a consistent snapshot
        timings: dict[str, float] = {}
        with torch.no_grad():
            tick = time.perf_counter()
            features = self.encoder.encode(rgb)
            timings["encode"] = time.perf_counter() - tick
            with self._swap_lock:
                tracks = {c.name: self._tracker.prompt(c.name, rgb.shape[:2]) for c in concepts}
            self.identity_trace = {}  # this frame's alone (filled by _segment_identity when recording)
            found = self._segment(features, rgb, concepts, tracks, self.config.presence, timings)
        tick = time.perf_counter()
        h, w = rgb.shape[:2]
        segments: list[Segment] = []
        ids: list[int] = []
        owned = np.zeros((h, w), np.uint16)
        for concept, mask, score in zip(concepts, found.masks, found.presence, strict=True):
            if mask is None:
                continue
            owned[mask] = concept.instance_id
            box = matching.tight_box(mask)
            segments.append(Segment(label=concept.name, instance_id=concept.instance_id,
                                    score=float(np.clip(score, 0.0, 1.0)), box_xyxy=box, personal=True))
            ids.append(concept.instance_id)
        with self._swap_lock:
            for concept, mask in zip(concepts, found.masks, strict=True):
                if concept.name in self._concepts:
                    self._tracker.update(concept.name, mask)
        margins = dict(zip((c.name for c in concepts), found.margins or [None] * len(concepts), strict=True))
        segments, demoted = labelling.finish_frame(self.scene, {c.name: c.category for c in concepts}, self.decoder,
                                                   features, rgb, owned, segments, timings, margins)
        if demoted:  # the fused evidence says these were look-alikes: search afresh next frame
            with self._swap_lock:
                for name in demoted:
                    self._tracker.forget(name)
        timings["output"] = time.perf_counter() - tick - timings.get("label", 0.0)
        timings["total"] = time.perf_counter() - start
        return FrameResult(
            instance_mask=owned,
            segments=segments,
            timings=timings,
            presence={c.name: float(s) for c, s in zip(concepts, found.presence, strict=True)},
        )

    def teach(
        self,
        name: str,
        images: Sequence[np.ndarray],
        masks: Sequence[np.ndarray] | None = None,
        boxes: Sequence[BoxXYXY] | None = None,
        fine_tune: bool = False,
        replace: bool = False,
        category: str = "",
    ) -> TeachResult:
        """Teach (or extend) concept ``name`` from reference images.

        ``images``: ``H×W×3 uint8 RGB``; ``masks``: one ``H×W bool`` per image, or ``boxes``:
        one XYXY box per image, or a single box for ``images[0]`` that is followed through the
        others. Adds shots to an existing concept unless ``replace``. ``fine_tune`` fits
        PerSAM-F scale weights (needs a decoder with logits, i.e. the sam backend). ``category``: the
        word of its kind ("mug"); empty keeps an extended concept's, else is inferred zero-shot from the
        shots when labelling is on (``TeachResult.category_source`` says which).
        """
        validate_name(name)
        category = labelling.check_category(category)
        images, masks, boxes = self._check_teach_inputs(images, masks, boxes)
        if fine_tune and not decoder_has_logits(self.decoder):
            raise InvalidInputError(
                f"fine_tune needs the sam backend (PerSAM-F fits weights on SAM's mask logits); the "
                f"{self.backend_name} backend has none: teach without fine_tune or use backend 'sam'"
            )
        with self._teach_lock:
            existing = self._concepts.get(name)
            keep_old = existing is not None and not replace
            total = len(images) + (existing.num_shots if keep_old else 0)
            if total > self.config.max_shots:
                raise InvalidInputError(
                    f"concept {name!r} would have {total} shots, more than "
                    f"max_shots={self.config.max_shots}; "
                    "teach fewer images or use replace=True"
                )
            with torch.no_grad():
                features = [self.encoder.encode(img) for img in images]
                if boxes is not None:
                    images, features, masks = self._masks_from_boxes(name, images, features, boxes)
            shots = [Shot(image=img, mask=m) for img, m in zip(images, masks, strict=True)]
            if keep_old:
                with torch.no_grad():
                    features = [self.encoder.encode(s.image) for s in existing.shots] + features
                shots = existing.shots + shots
            instance_id = existing.instance_id if existing is not None else self._next_instance_id()
            created = existing.created if existing is not None else time.time()
            tuned = fine_tune or (keep_old and existing.scale_weights is not None)
            concept = self._derive(name, shots, features, instance_id, created, tuned)
            concept.category, source = labelling.teach_category(
                self.scene, category, existing.category if keep_old else None,
                [s.image for s in shots], [s.mask for s in shots])
            self_iou = self._self_iou(concept, features)
            if self.scene is not None and self.config.personal_fusion:
                self.scene.set_personal(name, labelling.personal_embedding(
                    self.scene, self.decoder, features, [s.image for s in shots], [s.mask for s in shots],
                    concept.category) if concept.category else None)
            if self.memory is not None:
                self.memory.save(concept)
            with self._swap_lock:
                self._concepts = {**self._concepts, name: concept}
                self._tracker.forget(name)
                self._distractors.pop(name, None)
        return TeachResult(concept=concept.info(), self_iou=self_iou, category=concept.category,
                           category_source=source)

    # ---------------------------------------------------------------- loading

    def load_store(self) -> list[str]:
        """Load every concept of the concept store; returns warnings for the ones skipped or refitted.

        A concept made with another model id is re-derived from its stored shots and saved again. With
        ``identity`` on, a stored identity model is used as it is when its fit record equals this
        pipeline's (``identity_fit``); otherwise (none stored, unreadable, or fitted by another code
        version, model or turned-shots setting) it is fitted again from the shots and saved again.
        """
        if self.memory is None:
            return []
        warnings: list[str] = []
        loaded: dict[str, Concept] = {}
        for name, item in self.memory.load_all():
            if isinstance(item, ConceptStoreError):
                warnings.append(f"skipped concept {name!r}: {item}")
                continue
            if item.model_id != self.model_id:
                message = f"re-derived concept {name!r} from its shots for model {self.model_id}"
                failed = f"skipped concept {name!r} made with {item.model_id}"
            else:
                if not self.config.identity:  # a stored identity model stays in the store, unused
                    item.identity, item.identity_fit = None, None
                reason = self._identity_refit_reason(item)
                if reason is None:
                    loaded[name] = item
                    continue
                message = f"re-derived concept {name!r} from its shots to fit its identity model again: {reason}"
                failed = f"skipped concept {name!r}: its identity model cannot be fitted again"
            try:
                item = self._rederive(item)
            except (PerovssError, ValueError) as exc:
                warnings.append(f"{failed}: {exc}")
                continue
            try:
                self.memory.save(item)
            except ConceptStoreError as exc:
                message += f" (kept in memory only: {exc})"
            warnings.append(message)
            loaded[name] = item
        for message in warnings:
            log.warning(message)
        with self._swap_lock:
            self._concepts = {**loaded, **self._concepts}
        return warnings

    def identity_fit(self) -> IdentityFit:
        """How this pipeline fits identity models: a stored model with another record is fitted again."""
        return IdentityFit(version=IDENTITY_FIT_VERSION, model_id=self.model_id, turns=self._shot_turns(),
                           decoder=str(getattr(self.decoder, "fit_id", "")))

    def _shot_turns(self) -> tuple[float, ...]:
        return tuple(float(t) for t in decide.SHOT_TURNS) if self.config.turned_shots else ()

    def _identity_refit_reason(self, concept: Concept) -> str | None:
        """Why ``concept``'s stored identity model cannot be used as it is, None when it can (or identity is off)."""
        if not self.config.identity:
            return None
        stored, wanted = concept.identity_fit, self.identity_fit()
        if concept.identity is None:
            return "its stored identity model cannot be used" if stored is not None else "no identity model is stored"
        if stored is None:
            return "its stored identity model has no fit record"
        reasons = []
        if stored.version != wanted.version:
            reasons.append(f"fit version {stored.version} when fitted, {wanted.version} now")
        if stored.model_id != wanted.model_id:
            reasons.append(f"fitted for model {stored.model_id}, {wanted.model_id} now")
        if stored.turns != wanted.turns:
            reasons.append(f"turned shots {_turns_text(stored.turns)} when fitted, {_turns_text(wanted.turns)} now")
        if stored.decoder != wanted.decoder:
            was, now = stored.decoder or "unrecorded", wanted.decoder or "unrecorded"
            reasons.append(f"decoder {was} when fitted, {now} now")
        return "; ".join(reasons) or None

    def _rederive(self, old: Concept) -> Concept:
        with torch.no_grad():
            features = [self.encoder.encode(s.image) for s in old.shots]
        tuned = old.scale_weights is not None and decoder_has_logits(self.decoder)
        concept = self._derive(old.name, old.shots, features, old.instance_id, old.created, tuned)
        concept.category = old.category
        return concept

    # ---------------------------------------------------------------- internals

    def _check_teach_inputs(
        self, images, masks, boxes
    ) -> tuple[list[np.ndarray], list[np.ndarray] | None, list[BoxXYXY] | None]:
        if isinstance(images, np.ndarray) and images.ndim == 3:
            images = [images]
        if images is None or len(images) == 0:
            raise InvalidInputError("teach needs at least one image")
        limit = self.config.max_image_pixels
        images = [check_image(img, limit, f"image {i}") for i, img in enumerate(images)]
        if len(images) > self.config.max_shots:
            raise InvalidInputError(f"{len(images)} images is more than max_shots={self.config.max_shots}")
        has_masks = masks is not None and len(masks) > 0
        has_boxes = boxes is not None and len(boxes) > 0
        if has_masks == has_boxes:
            raise InvalidInputError("teach needs either masks (one per image) or boxes (not both)")
        if has_masks:
            if len(masks) != len(images):
                raise InvalidInputError(f"got {len(masks)} masks for {len(images)} images; need one each")
            return images, [check_mask(m, img.shape[:2], f"mask {i}") for i, (m, img) in
                            enumerate(zip(masks, images, strict=True))], None
        if len(boxes) not in (1, len(images)):
            raise InvalidInputError(
                f"got {len(boxes)} boxes for {len(images)} images; give one box per image or one for image 0"
            )
        return images, None, [check_box(b, img.shape[:2], f"box {i}") for i, (b, img) in
                              enumerate(zip(boxes, images, strict=False))]

    def _next_instance_id(self) -> int:
        used = {c.instance_id for c in self._concepts.values()}
        candidate = max(used, default=0) + 1
        if candidate > MAX_INSTANCE_ID:
            candidate = next((i for i in range(1, MAX_INSTANCE_ID + 1) if i not in used), 0)
            if candidate == 0:
                raise InvalidInputError(f"no free instance id left ({MAX_INSTANCE_ID} concepts taught)")
        return candidate

    def _derive(
        self, name: str, shots: list[Shot], features: list[Features], instance_id: int, created: float,
        fine_tune: bool,
    ) -> Concept:
        """Build a concept (targets, calibration, PerSAM-F weights) from shots and their features."""
        coverage = [matching.mask_to_grid(s.mask, f) for s, f in zip(shots, features, strict=True)]
        local, object_cells = [], []
        for i, (cov, f) in enumerate(zip(coverage, features, strict=True)):
            # PerSAM's cosine map (identity off) on SAM takes the official code's cells for its targets;
            # that rule is defined on SAM's normalised input, so the classic backend keeps half-covered cells.
            official = not self.config.identity and decoder_has_logits(self.decoder)
            cells = matching.persam_cells(shots[i].mask, f) if official else cov >= CELL_COVERAGE
            if not bool(cells.any()):
                cells = cov > 0  # a small object: any coverage rather than nothing
            if not bool(cells.any()):
                raise InvalidInputError(f"mask of shot {i} of {name!r} vanishes on the feature grid")
            local.append(matching.local_features(f.grid, cells))
            object_cells.append(cells)
        vectors = [matching.target_vectors(x) for x in local]
        # PerSAM matches with the mean; PerSAM-F with (max + mean) / 2, as the reference code does.
        targets = torch.stack([v.max_mean if fine_tune else v.mean for v in vectors])
        embedding = torch.cat(local).mean(0)
        top_k = presence.top_k_for(min(int(x.shape[0]) for x in local))
        fg, bg = [], []
        for i, (cov, f) in enumerate(zip(coverage, features, strict=True)):
            others = [j for j in range(len(shots)) if j != i] or [i]
            grid_map = matching.confidence_grid(targets[others], f.grid).max(0).values
            vh, vw = f.valid_hw
            valid = torch.zeros_like(cov, dtype=torch.bool)
            valid[:vh, :vw] = True
            cells = cov >= CELL_COVERAGE
            fg.append(presence.presence_score(grid_map, cells if bool(cells.any()) else cov > 0, top_k))
            bg.append(presence.presence_score(grid_map, valid & (cov == 0), top_k))
        cal = presence.calibrate(fg, bg)
        concept = Concept(
            name=name, instance_id=instance_id, model_id=self.model_id, created=created, shots=shots,
            local=local, targets=targets, embedding=embedding, presence_threshold=cal.threshold,
            calibration={"fg_low": cal.fg_low, "bg_high": cal.bg_high},
        )
        if self.config.identity:
            fit = self.identity_fit()
            concept.identity = decide.fit_identity(
                self.decoder, [s.image for s in shots], [s.mask for s in shots], features, object_cells,
                embedding, top_k, encode=self.encoder.encode, turns=fit.turns)
            concept.identity_fit = fit  # saved with it: a later load uses it only while this record holds
        if fine_tune:
            concept.scale_weights = self._fit_scale_weights(concept, shots[0], features[0])
        return concept

    def _fit_scale_weights(self, concept: Concept, shot: Shot, features: Features) -> torch.Tensor:
        """PerSAM-F: weights of the 3 multimask logits from the positive point on the first shot."""
        try:
            from perovss_ros.core.persam_f import fit_scale_weights
        except ImportError as exc:
            raise InvalidInputError(f"fine_tune needs perovss_ros.core.persam_f ({exc})") from exc
        with torch.no_grad():
            grid_map = matching.confidence_grid(concept.targets, features.grid).max(0).values
            image_map = matching.upsample_to_image(grid_map[None], features)
            positive, _ = matching.select_points(image_map)
            out = self.decoder.decode(
                features, shot.image,
                [Prompts(points=positive[0], labels=np.ones(1, np.int64), multimask=True)],
            )
        if out.logits is None:
            raise InvalidInputError(f"fine_tune needs the sam backend; {self.backend_name} gives no logits")
        logits = out.logits[0].float()
        target = matching.mask_to_frame(shot.mask, features, tuple(logits.shape[-2:])) >= 0.5
        return fit_scale_weights(logits, target).detach().float()

    def _self_iou(self, concept: Concept, features: list[Features]) -> float:
        """Mean IoU of each reference mask against what the concept finds in its own shot (global search)."""
        ious = []
        with torch.no_grad():
            for shot, f in zip(concept.shots, features, strict=True):
                found = self._segment(f, shot.image, [concept], {concept.name: None}, gate=False, timings={})
                mask = found.masks[0]
                ious.append(matching.mask_iou(mask, shot.mask, both_empty=1.0) if mask is not None else 0.0)
        return float(np.mean(ious)) if ious else 0.0

    def _masks_from_boxes(
        self, name: str, images: list[np.ndarray], features: list[Features], boxes: list[BoxXYXY]
    ) -> tuple[list[np.ndarray], list[Features], list[np.ndarray]]:
        """Turn boxes into masks with the decoder; a single box on image 0 is followed through the others."""
        masks: list[np.ndarray] = []
        with torch.no_grad():
            for img, f, box in zip(images, features, boxes, strict=False):
                masks.append(self._mask_from_box(img, f, box))
            if len(boxes) == len(images):
                return images, features, masks
            kept_images, kept_features = [images[0]], [features[0]]
            provisional = self._derive(name, [Shot(images[0], masks[0])], [features[0]], 0, 0.0, False)
            box = matching.tight_box(masks[0])
            for i in range(1, len(images)):
                track = {name: (expand_box(box, images[i].shape[:2]), box_centre(box))}
                found = self._segment(features[i], images[i], [provisional], track, gate=False, timings={})
                mask = found.masks[0]
                if mask is None or not mask.any():
                    log.warning("teach %r: lost the object in image %d; that image is skipped", name, i)
                    continue
                kept_images.append(images[i])
                kept_features.append(features[i])
                masks.append(mask)
                box = matching.tight_box(mask)
        return kept_images, kept_features, [masks[0], *masks[len(boxes):]]

    def _mask_from_box(self, rgb: np.ndarray, features: Features, box: BoxXYXY) -> np.ndarray:
        request = CascadeRequest(
            prompts=Prompts(points=np.asarray([box_centre(box)], np.float32), labels=np.ones(1, np.int64),
                            box=box)
        )
        mask = run_cascade(self.decoder, features, rgb, [request]).masks[0]
        if not mask.any():
            raise InvalidInputError(f"nothing could be segmented inside box {tuple(box)}; draw a tighter box")
        return mask

    def _segment(
        self,
        features: Features,
        rgb: np.ndarray,
        concepts: list[Concept],
        tracks: dict[str, tuple[BoxXYXY, tuple[float, float]] | None],
        gate: bool,
        timings: dict[str, float],
    ) -> _Found:
        """Match, gate, prompt, decode and resolve ``concepts`` in one encoded frame."""
        k = len(concepts)
        if k == 0:
            return _Found([], [], [])
        if self.config.identity and all(c.identity is not None for c in concepts):
            return self._segment_identity(features, rgb, concepts, tracks, gate, timings)
        tick = time.perf_counter()
        targets = torch.cat([c.targets for c in concepts])
        shot_maps = matching.confidence_grid(targets, features.grid)
        maps = matching.max_over_groups(shot_maps, [c.targets.shape[0] for c in concepts])
        vh, vw = features.valid_hw
        scores = presence.presence_scores(maps[:, :vh, :vw], [c.presence_k for c in concepts]).tolist()
        active = [i for i, c in enumerate(concepts) if not gate or scores[i] >= c.presence_threshold]
        timings["match"] = time.perf_counter() - tick
        result = _Found([None] * k, scores, [0.0] * k)
        if not active:
            return result
        tick = time.perf_counter()
        image_maps = matching.upsample_to_image(maps[active], features, official=decoder_has_logits(self.decoder))
        positives, negatives = matching.select_points(image_maps)
        requests = []
        for row, i in enumerate(active):
            concept = concepts[i]
            official_bias = image_maps[row] if self.config.persam_bias == "official" else None
            guidance = Guidance(attention_bias=matching.attention_bias(maps[i], features.valid_hw, official_bias),
                                target_embedding=concept.embedding)
            points = [positives[row, 0]]
            labels = [1]
            box = None
            track = tracks.get(concept.name)
            if track is not None:
                local = _argmax_in_box(image_maps[row], track[0])
                if local is not None and local[1] >= concept.presence_threshold:
                    box = track[0]
                    points = [np.asarray(local[0], np.float32), np.asarray(track[1], np.float32)]
                    labels = [1, 1]
            points.append(negatives[row])
            labels.append(0)
            requests.append(CascadeRequest(
                prompts=Prompts(points=np.stack(points).astype(np.float32),
                                labels=np.asarray(labels, np.int64), box=box),
                guidance=guidance,
                scale_weights=concept.scale_weights,
                positive=(float(points[0][0]), float(points[0][1])),
            ))
        timings["prompt"] = time.perf_counter() - tick
        tick = time.perf_counter()
        decoded = run_cascade(self.decoder, features, rgb, requests)
        timings["decode"] = time.perf_counter() - tick
        tick = time.perf_counter()
        owner = resolve_instances(decoded.masks, image_maps.numpy())
        for row, i in enumerate(active):
            mask = owner == row
            if mask.any():
                result.masks[i] = mask
                result.decode_scores[i] = float(decoded.scores[row])
        timings["resolve"] = time.perf_counter() - tick
        return result


    def _segment_identity(self, features: Features, rgb: np.ndarray, concepts: list[Concept],
                          tracks: dict[str, tuple[BoxXYXY, tuple[float, float]] | None], gate: bool,
                          timings: dict[str, float]) -> _Found:
        """``_segment`` with candidates, identity and the outline check (``core/decide.py``)."""
        trace: list[decide.CandidateTrace] | None = [] if self.record_identity_trace and gate else None
        distractors = None
        if self.config.distractors:
            with self._swap_lock:
                distractors = {c.name: self._distractors.setdefault(c.name, DistractorMemory()) for c in concepts}
        decision = decide.segment_frame(self.decoder, features, rgb, concepts, tracks, gate, timings,
                                        cascade=self.config.cascade, trace=trace, distractors=distractors,
                                        light_correction=self.config.light_correction)
        if trace is not None:
            self.identity_trace = {c.name: [t for t in trace if t.concept == i] for i, c in enumerate(concepts)}
        result = _Found([None] * len(concepts), decision.presence, [0.0] * len(concepts),
                        margins=list(decision.margins) or None)
        rows = [i for i, m in enumerate(decision.masks) if m is not None]
        if not rows:
            return result
        tick = time.perf_counter()
        owner = resolve_instances(np.stack([decision.masks[i] for i in rows]),
                                  decision.image_maps[rows].numpy())
        for row, i in enumerate(rows):
            mask = owner == row
            if mask.any():
                result.masks[i] = mask
                result.decode_scores[i] = decision.decode_scores[i]
        timings["resolve"] = time.perf_counter() - tick
        return result


def _turns_text(turns: tuple[float, ...]) -> str:
    return "/".join(f"{t:g}°" for t in turns) if turns else "off"


def _argmax_in_box(image_map: torch.Tensor, box: BoxXYXY) -> tuple[tuple[float, float], float] | None:
    """Best ``(x, y)`` of an ``H×W`` map inside an XYXY box and its value, None for an empty box."""
    h, w = image_map.shape
    x0, y0 = max(0, int(box[0])), max(0, int(box[1]))
    x1, y1 = min(w, int(np.ceil(box[2]))), min(h, int(np.ceil(box[3])))
    if x1 <= x0 or y1 <= y0:
        return None
    window = image_map[y0:y1, x0:x1]
    idx = int(window.argmax())
    ww = x1 - x0
    return (float(x0 + idx % ww), float(y0 + idx // ww)), float(window.reshape(-1)[idx])
