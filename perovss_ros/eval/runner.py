"""Run the perception pipeline over evaluation sequences and score every frame.

``evaluate(sequences, pipeline, out_dir)`` teaches each sequence's concepts,
processes its frames, and returns an ``EvalResult``. The scoring part,
``EvalRecorder``, is separate so that other drivers (the demo, which gets its
masks from the running node) can score frames the same way: give it each
frame's ``H×W`` instance mask, the ``H×W`` uint16 ground truth and the concept
-> (predicted id, ground-truth id) mapping; optionally the all-object ground
truth and each concept's look-alike ids, so that predictions lying on a
look-alike are counted (``lookalike_as_mine``). Frames with category ground
truth are also scored with the open-vocabulary metrics
(``EvalRecorder.add_open_vocab``, ``eval/open_vocab.py``) from the predicted
segments, with a labelled contact sheet of the frames whose categories went
worst.
"""

from __future__ import annotations

import heapq
import itertools
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from perovss_ros.core.errors import InvalidInputError, PerovssError
from perovss_ros.eval.metrics import FrameScore, score_frame, summarize
from perovss_ros.eval.open_vocab import (
    CategoryTable,
    OpenVocabScorer,
    PersonalTruth,
    PredictedSegment,
    predicted_segments,
)
from perovss_ros.eval.plots import Tile, overlay, segment_caption, thumbnail
from perovss_ros.eval.sources import EvalSequence

PREDICTIONS_DIR = "predictions"


@dataclass(frozen=True)
class ConceptMap:
    """A taught concept: its ``name``, the instance id the pipeline gives it, and its id in the ground truth.

    ``lookalike_ids``: ids of its look-alikes in the all-object ground truth (empty: none, or unknown).
    """

    name: str
    pred_id: int
    gt_id: int
    lookalike_ids: tuple[int, ...] = ()


@dataclass(frozen=True, kw_only=True)
class FrameRecord(FrameScore):
    """A ``FrameScore`` with where it comes from (``score`` is the segment's confidence, None if no segment)."""

    sequence: str
    index: int
    concept: str
    score: float | None = None


@dataclass
class EvalResult:
    """Everything an evaluation measured.

    ``meta``: what ran on what (source, kind, backend, model id, seed, config).
    ``overall`` and ``per_concept``: ``metrics.summarize`` dictionaries.
    ``speed``: frames, seconds inside ``process``, fps, median ms per stage.
    ``teach``: per concept, shots, self IoU and teaching seconds.
    ``worst``: overlay tiles of the worst frames, worst first (not serialised).
    ``open_vocab``: ``OpenVocabScorer.summary()`` ({} when no frame had category ground truth);
    ``labelled``: overlay tiles with every segment's label, worst category IoU first (not serialised).
    """

    meta: dict
    records: list[FrameRecord]
    per_concept: dict[str, dict]
    overall: dict
    speed: dict
    teach: dict[str, dict] = field(default_factory=dict)
    worst: list[Tile] = field(default_factory=list)
    open_vocab: dict = field(default_factory=dict)
    labelled: list[Tile] = field(default_factory=list)

    def to_json(self) -> dict:
        """The JSON-serialisable part (``metrics.json``; per-frame records are written separately)."""
        out = {"meta": self.meta, "overall": self.overall, "per_concept": self.per_concept,
               "speed": self.speed, "teach": self.teach}
        if self.open_vocab:
            out["open_vocab"] = self.open_vocab
        return out

    def series(self) -> dict[str, tuple[list[int], list[float], list[bool]]]:
        """Per concept: (frame indices, IoU, present), in processing order."""
        out: dict[str, tuple[list[int], list[float], list[bool]]] = {}
        for r in self.records:
            idx, ious, present = out.setdefault(r.concept, ([], [], []))
            idx.append(r.index)
            ious.append(r.iou)
            present.append(r.present)
        return out


class LowestFrames:
    """The ``k`` tiles offered with the lowest scores so far (ties: the earliest), rendered only when kept."""

    def __init__(self, k: int):
        self.k = k
        self._heap: list[tuple[float, int, Tile]] = []
        self._counter = itertools.count()

    def offer(self, score: float, render: Callable[[], Tile]) -> None:
        """Keep ``render()`` if ``score`` is among the ``k`` lowest (NaN scores are never kept)."""
        if self.k <= 0 or np.isnan(score):
            return
        # The heap holds -score, so its top is the best of the kept frames: the one to drop.
        if len(self._heap) >= self.k and -score <= self._heap[0][0]:
            return
        heapq.heappush(self._heap, (-score, -next(self._counter), render()))
        if len(self._heap) > self.k:
            heapq.heappop(self._heap)

    def tiles(self) -> list[Tile]:
        """The kept tiles, lowest score first, then earliest."""
        return [t for _, _, t in sorted(self._heap, key=lambda e: (-e[0], -e[1]))]


class EvalRecorder:
    """Scores frames as they come and keeps what a report needs.

    With ``out_dir`` and ``save_predictions``, each frame's instance mask is
    written as a 16-bit PNG ``predictions/<sequence>/<index:06d>.png`` and the
    concept ids of every sequence go to ``predictions/index.json``, so the
    numbers can be recomputed from the files. The ``worst_k`` frames with the
    lowest mean IoU over concepts are kept as overlay thumbnails, and the
    ``labelled_k`` frames with the lowest category IoU as labelled overlays.
    ``vocabulary``: the classes of the generic mIoU (None: all in the class tables).
    """

    def __init__(self, out_dir: str | Path | None = None, save_predictions: bool = True, worst_k: int = 12,
                 thumb_width: int = 320, vocabulary: Sequence[str] | None = None, labelled_k: int = 8):
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.save_predictions = save_predictions and self.out_dir is not None
        self.worst_k = worst_k
        self.thumb_width = thumb_width
        self.records: list[FrameRecord] = []
        self.teach: dict[str, dict] = {}
        self.frames = 0
        self.process_seconds = 0.0
        self.stage_seconds: dict[str, list[float]] = {}
        self._worst = LowestFrames(worst_k)
        self._labelled = LowestFrames(labelled_k)
        self.open_vocab = OpenVocabScorer(vocabulary)
        self._index: dict[str, dict] = {}

    def add_teach(self, name: str, info: Mapping) -> None:
        """Note how concept ``name`` was taught (shots, self IoU, seconds, or an error)."""
        self.teach[name] = dict(info)

    def add(self, sequence: str, index: int, rgb: np.ndarray, instance_mask: np.ndarray, gt: np.ndarray | None,
            concepts: Sequence[ConceptMap], seconds: float | None = None, timings: Mapping[str, float] | None = None,
            scores: Mapping[str, float] | None = None, objects: np.ndarray | None = None) -> list[FrameRecord]:
        """Score one frame: ``instance_mask`` ``H×W`` predicted ids, ``gt`` ``H×W`` uint16 ids or None.

        ``objects``: the all-object ground truth ``H×W`` uint16 (every
        look-alike with its own id) or None; with it each record says whether
        the prediction lay mostly on one of the concept's ``lookalike_ids``.
        Returns the frame's records (one per concept; none without ground truth).
        """
        self.frames += 1
        if seconds is not None:
            self.process_seconds += seconds
        for stage, value in (timings or {}).items():
            self.stage_seconds.setdefault(stage, []).append(float(value))
        entry = self._index.setdefault(sequence, {"concepts": {}, "frames": []})
        entry["concepts"].update({c.name: {"pred_id": c.pred_id, "gt_id": c.gt_id} for c in concepts})
        entry["frames"].append(int(index))
        if self.save_predictions:
            folder = self.out_dir / PREDICTIONS_DIR / sequence
            folder.mkdir(parents=True, exist_ok=True)
            if not cv2.imwrite(str(folder / f"{index:06d}.png"), np.ascontiguousarray(instance_mask, np.uint16)):
                raise OSError(f"cannot write prediction {folder / f'{index:06d}.png'}")
        if gt is None:
            return []
        records = []
        for c in concepts:
            lookalike = None if objects is None else np.isin(objects, c.lookalike_ids)
            s = score_frame(instance_mask == c.pred_id, gt == c.gt_id, lookalike)
            records.append(FrameRecord(**asdict(s), sequence=sequence, index=int(index), concept=c.name,
                                       score=None if scores is None else scores.get(c.name)))
        self.records.extend(records)
        if records:
            def render() -> Tile:
                gt_union = np.isin(gt, [c.gt_id for c in concepts])
                image = overlay(rgb, instance_mask, gt_union, {c.pred_id: c.name for c in concepts})
                detail = ", ".join(f"{r.concept} {r.iou:.2f} {caption_outcome(r)}" for r in records)
                return Tile(thumbnail(image, self.thumb_width), f"{sequence} #{index}: {detail}")

            self._worst.offer(float(np.mean([r.iou for r in records])), render)
        return records

    def add_open_vocab(self, sequence: str, index: int, rgb: np.ndarray, segments: Sequence[PredictedSegment],
                       concepts: Sequence[ConceptMap], categories: CategoryTable, gt: np.ndarray | None,
                       classes: np.ndarray | None, objects: np.ndarray | None = None) -> dict[str, float]:
        """Score one frame's predicted segments with the open-vocabulary metrics (``OpenVocabScorer.add``).

        ``gt``: personal ground truth (``H×W`` uint16, the concepts' ``gt_id``), ``classes``: class ids,
        ``objects``: all-object ids (each may be None). Returns the frame's own numbers.
        """
        personal = [PersonalTruth(c.name, c.gt_id) for c in concepts]
        numbers = self.open_vocab.add(segments, personal, categories, gt, classes, objects)
        if classes is not None:
            def render() -> Tile:
                ids = np.zeros(classes.shape, np.uint16)
                for k, seg in enumerate(segments):
                    ids[np.asarray(seg.mask, bool)] = k + 1
                texts = {k + 1: segment_caption(seg.label, seg.category, seg.personal)
                         for k, seg in enumerate(segments)}
                image = overlay(rgb, ids, classes > 0, texts)
                score = numbers.get("category_iou", float("nan"))
                return Tile(thumbnail(image, self.thumb_width),
                            f"{sequence} #{index}: category IoU {score:.2f}, {len(segments)} segment(s)")

            self._labelled.offer(numbers.get("category_iou", float("nan")), render)
        return numbers

    def write_index(self) -> Path | None:
        """Write ``predictions/index.json`` (concept ids and frame indices per sequence), if saving."""
        if not self.save_predictions:
            return None
        path = self.out_dir / PREDICTIONS_DIR / "index.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self._index, indent=1))
        return path

    def result(self, meta: Mapping | None = None) -> EvalResult:
        """Summaries of everything recorded so far."""
        by_concept: dict[str, list[FrameRecord]] = {}
        for r in self.records:
            by_concept.setdefault(r.concept, []).append(r)
        per_concept = {name: summarize(recs) for name, recs in by_concept.items()}
        overall = summarize(self.records) if self.records else {}
        if per_concept:
            mious = [v["miou"] for v in per_concept.values() if not np.isnan(v["miou"])]
            overall["miou_mean_over_concepts"] = float(np.mean(mious)) if mious else float("nan")
            overall["concepts"] = len(per_concept)
        speed = {
            "frames": self.frames,
            "process_seconds": self.process_seconds,
            "fps": self.frames / self.process_seconds if self.process_seconds > 0 else float("nan"),
            "median_ms": {k: 1000.0 * float(np.median(v)) for k, v in self.stage_seconds.items()},
        }
        return EvalResult(meta=dict(meta or {}), records=list(self.records), per_concept=per_concept,
                          overall=overall, speed=speed, teach=dict(self.teach), worst=self._worst.tiles(),
                          open_vocab=self.open_vocab.summary() if self.open_vocab.frames else {},
                          labelled=self._labelled.tiles())


def evaluate(sequences: Sequence[EvalSequence], pipeline, out_dir: str | Path | None = None,
             progress: bool = True, worst_k: int = 12, meta: Mapping | None = None,
             save_predictions: bool = True, vocabulary: Sequence[str] | None = None) -> EvalResult:
    """Teach and run ``pipeline`` (a ``perovss_ros.core.Pipeline``) over ``sequences``; score every frame.

    Each sequence's concepts are forgotten again after it, so the next
    sequence starts clean; the pipeline must not already hold a concept of the
    same name (InvalidInputError: evaluate on a pipeline with an in-memory
    store). A concept that cannot be taught (e.g. an empty reference mask) is
    reported in ``result.teach`` and left out. ``fps`` counts only the time
    inside ``pipeline.process``. Sequences with category ground truth are
    also scored with the open-vocabulary metrics over ``vocabulary``.
    """
    from tqdm import tqdm

    existing = {info.name for info in pipeline.concepts()}
    clash = sorted(existing & {spec.name for seq in sequences for spec in seq.concepts})
    if clash:
        raise InvalidInputError(f"the pipeline already has concept(s) {', '.join(clash)}; evaluate on a pipeline "
                                "with an in-memory concept store (concept_store '')")
    recorder = EvalRecorder(out_dir, save_predictions=save_predictions, worst_k=worst_k, vocabulary=vocabulary)
    for seq in sequences:
        pipeline.reset_tracking()
        maps: list[ConceptMap] = []
        for spec in seq.concepts:
            start = time.perf_counter()
            try:
                taught = pipeline.teach(spec.name, images=[s[0] for s in spec.shots], masks=[s[1] for s in spec.shots])
            except PerovssError as exc:
                recorder.add_teach(spec.name, {"sequence": seq.name, "error": str(exc)})
                continue
            recorder.add_teach(spec.name, {"sequence": seq.name, "shots": len(spec.shots),
                                           "self_iou": float(taught.self_iou),
                                           "presence_threshold": float(taught.concept.presence_threshold),
                                           "seconds": time.perf_counter() - start})
            maps.append(ConceptMap(spec.name, int(taught.concept.instance_id), spec.gt_id, spec.lookalike_ids))
        frames = tqdm(seq.frames(), total=seq.num_frames, desc=seq.name, unit="frame", leave=False,
                      disable=None if progress else True)
        for frame in frames:
            if not seq.video:
                pipeline.reset_tracking()
            start = time.perf_counter()
            res = pipeline.process(frame.rgb)
            seconds = time.perf_counter() - start
            scores = {s.label: float(s.score) for s in res.segments if s.personal}
            recorder.add(seq.name, frame.index, frame.rgb, res.instance_mask, frame.gt, maps, seconds,
                         res.timings, scores, objects=frame.objects)
            if seq.categories is not None:
                recorder.add_open_vocab(seq.name, frame.index, frame.rgb,
                                        predicted_segments(res.instance_mask, res.segments), maps,
                                        seq.categories, frame.gt, frame.classes, frame.objects)
        for m in maps:
            pipeline.forget(m.name)
    recorder.write_index()
    info = dict(meta or {})
    info.setdefault("sequences", [s.name for s in sequences])
    info.setdefault("backend", getattr(pipeline, "backend_name", None))
    info.setdefault("model_id", getattr(pipeline, "model_id", None))
    return recorder.result(info)


def caption_outcome(record: FrameScore) -> str:
    """A record's outcome in words for a caption ("wrong object"; "+ look-alike" when it lay on one)."""
    words = record.outcome.replace("_", " ")
    return words + (" (on a look-alike)" if record.lookalike_as_mine else "")


def records_as_dicts(records: Sequence[FrameRecord]) -> list[dict]:
    """Per-frame records as plain dicts (for ``per_frame.json``)."""
    return [asdict(r) for r in records]
