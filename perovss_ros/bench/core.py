"""``perovss bench core``: quality of the classic backend, memory over many frames, SAM scaling.

* quality: ``--sequences`` synthetic scenes (seeds ``--first-seed`` .. + N-1) of ``--frames``
  frames and ``--difficulty`` easy or hard, 1-3 personal objects (1 + seed % 3) with
  ``--lookalikes-per-object`` look-alikes each (default 2 easy, 3 hard), taught from the scene's
  3 teaching frames. Per sequence and in total: mIoU over (frame, object) pairs where the object
  is present, presence precision/recall over all pairs, the outcome of every pair (right, spill,
  wrong object, partial, miss, false alarm, true absent; ``perovss_ros.eval.metrics``), "wrong
  object" as a share of present pairs, predictions lying mostly on a look-alike, and the median
  ``process()`` time. Targets: mIoU >= 0.80, wrong object <= 3 %, precision and recall >= 0.95.
  ``--explain`` also sorts every miss, wrong pick and false alarm by its cause
  (``perovss_ros/bench/core_explain.py``).
* memory: ``--memory-frames`` frames through one pipeline; per-frame Python peak (tracemalloc)
  and process RSS, first tenth against last tenth (flat means no growth with frames processed).
* scaling: engineer SAM's ``perovss_ros/bench/core_scaling.py`` (tiny SAM, K = 1, 2, 4, 8).
* encoders (only with ``--part encoders``, not in ``all``): the SAM image encoder per frame in
  PyTorch against ONNX Runtime (``perovss_ros/bench/core_encoders.py``).
* labels (only with ``--part labels``, not in ``all``): issue 9's open-vocabulary figures on the
  quality part's scenes with the synthetic CLIP, labelling on against off
  (``perovss_ros/bench/core_labels.py``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from perovss_ros.eval.metrics import OutcomeCounts

HELP = "pipeline quality on synthetic scenes (classic), memory over many frames, and SAM scaling with K"
TARGET_MIOU = 0.80
TARGET_PRESENCE = 0.95
TARGET_WRONG_OBJECT = 0.03
DEFAULT_LOOKALIKES_PER_OBJECT = {"easy": 2, "hard": 3}


def _scaling_module():
    try:
        from perovss_ros.bench import core_scaling
    except ImportError:
        return None
    return core_scaling


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """--part, --sequences, --frames, --size, --backend, --model, --memory-frames (+ scaling options)."""
    parser.add_argument("--part", choices=("quality", "memory", "scaling", "encoders", "labels", "all"),
                        default="all",
                        help="all = quality, memory and scaling; encoders (torch against onnxruntime per frame) "
                             "and labels (open-vocabulary figures, labelling on against off) run only when asked")
    parser.add_argument("--sequences", type=int, default=20,
                        help="synthetic sequences (seeds FIRST..FIRST+N-1, see --first-seed)")
    parser.add_argument("--first-seed", type=int, default=0, help="seed of the first quality sequence (default: 0)")
    parser.add_argument("--difficulty", choices=("easy", "hard"), default="easy",
                        help="quality scenes: easy (look-alikes differ in two attributes) or hard (in one; full "
                             "rotation, touching look-alikes); default: easy")
    parser.add_argument("--lookalikes-per-object", type=int, default=None,
                        help="look-alikes per personal object in the quality scenes (default: 2 easy, 3 hard)")
    parser.add_argument("--frames", type=int, default=60, help="frames per sequence")
    parser.add_argument("--size", default="320x240", help="frame size WxH")
    parser.add_argument("--backend", default="classic", help="backend of the quality/memory parts")
    parser.add_argument("--model", default="tiny", help="SAM model when --backend sam")
    parser.add_argument("--memory-frames", type=int, default=200, help="frames of the memory part")
    parser.add_argument("--no-identity", dest="identity", action="store_false",
                        help="match with PerSAM's cosine map alone (the baseline before identity)")
    parser.add_argument("--no-distractors", dest="distractors", action="store_false",
                        help="identity without following the look-alikes seen beside a concept "
                             "(core/distractors.py), to measure what that memory does")
    parser.add_argument("--no-turned-shots", dest="turned_shots", action="store_false",
                        help="identity without the teach shots turned by 90/180/270 degrees as positives, "
                             "to measure what they do")
    parser.add_argument("--track-coast-frames", type=int, default=3,
                        help="frames a track is kept after the concept was last found (pipeline option "
                             "track_coast_frames; 0: a track ends at the first miss)")
    from perovss_ros.sim import camera

    camera.add_arguments(parser, "quality/labels")
    parser.add_argument("--explain", action="store_true",
                        help="quality: sort every miss, wrong pick and false alarm by its cause (the identity "
                             "decision's trace against the ground truth; bench/core_explain.py)")
    scaling = _scaling_module()
    if scaling is not None:
        scaling.add_arguments(parser)
    from perovss_ros.bench import core_encoders, core_labels

    core_encoders.add_arguments(parser)
    core_labels.add_arguments(parser)


def _size(text: str) -> tuple[int, int]:
    width, height = (int(v) for v in text.lower().split("x"))
    return width, height


def _pipeline(args: argparse.Namespace):
    from perovss_ros.core import build_pipeline

    return build_pipeline({"backend": args.backend, "model": args.model, "concept_store": "",
                           "identity": getattr(args, "identity", True),
                           "distractors": getattr(args, "distractors", True),
                           "turned_shots": getattr(args, "turned_shots", True),
                           "track_coast_frames": getattr(args, "track_coast_frames", 3)})


@dataclass
class _Tally:
    """What the quality part counts over some (frame, object) pairs."""

    ious: list[float] = field(default_factory=list)
    presence: list[int] = field(default_factory=lambda: [0, 0, 0])  # TP, FP, FN
    outcomes: OutcomeCounts = field(default_factory=lambda: _metrics().OutcomeCounts())
    frame_times: list[float] = field(default_factory=list)
    causes: list[str | None] = field(default_factory=list)  # with --explain: per pair, see core_explain

    def add(self, other: _Tally) -> None:
        self.ious += other.ious
        self.causes += other.causes
        self.presence = [a + b for a, b in zip(self.presence, other.presence, strict=True)]
        self.outcomes.merge(other.outcomes)
        self.frame_times += other.frame_times

    def summary(self) -> dict:
        tp, fp, fn = self.presence
        present = self.outcomes.present
        return {
            "miou": float(np.mean(self.ious)) if self.ious else 0.0,
            "precision": tp / (tp + fp) if tp + fp else 1.0,
            "recall": tp / (tp + fn) if tp + fn else 1.0,
            "pairs_present": len(self.ious),
            "wrong_object_fraction": self.outcomes.wrong_object / present if present else 0.0,
            "outcomes": self.outcomes.as_dict(),
            "median_frame_ms": 1000 * statistics.median(self.frame_times) if self.frame_times else 0.0,
        }


def _metrics():
    """``perovss_ros.eval.metrics``, imported when a part runs (the CLI parser imports this module)."""
    from perovss_ros.eval import metrics

    return metrics


def _outcome_text(summary: dict) -> str:
    o = summary["outcomes"]
    return (f"right {o['right']} spill {o['spill']} wrong {o['wrong_object']} partial {o['partial']} "
            f"miss {o['miss']} FA {o['false_alarm']} TA {o['true_absent']} look-alike-as-mine {o['lookalike_as_mine']}")


def lookalikes_per_object(args: argparse.Namespace) -> int:
    """``--lookalikes-per-object``, or the default of ``--difficulty``."""
    if args.lookalikes_per_object is not None:
        return args.lookalikes_per_object
    return DEFAULT_LOOKALIKES_PER_OBJECT[args.difficulty]


def quality_scene(args: argparse.Namespace, seed: int, per_object: int):
    """The quality scenes' ``Scene`` of ``seed``: 1 + seed % 3 personal objects with ``per_object`` look-alikes
    each, ``--frames`` frames of ``--size`` at ``--difficulty``, seen through ``camera(args)`` (the labels
    part runs the same scenes)."""
    from perovss_ros.sim.camera import degrade_scene
    from perovss_ros.sim.scenes import make_scene

    num_objects = 1 + seed % 3
    scene = make_scene(seed=seed, num_frames=args.frames, size=_size(args.size), num_objects=num_objects,
                       num_lookalikes=per_object * num_objects, difficulty=args.difficulty)
    return degrade_scene(scene, camera(args), seed)


def camera(args: argparse.Namespace):
    """The ``CameraDegradation`` of ``--blur``, ``--camera-noise``, ``--jpeg-quality`` and ``--light-shift``
    (inactive by default)."""
    from perovss_ros.sim.camera import from_arguments

    return from_arguments(args)


def _run_sequence(args: argparse.Namespace, seed: int, per_object: int) -> tuple[int, _Tally]:
    """Teach and run one scene; returns its number of personal objects and what it counted."""
    from perovss_ros.bench.core_explain import explain_pair, truth_passes
    from perovss_ros.eval.metrics import classify_outcome, iou, lookalike_as_mine

    scene = quality_scene(args, seed, per_object)
    num_objects = len(scene.objects)
    pipe = _pipeline(args)
    explain = getattr(args, "explain", False)
    pipe.record_identity_trace = explain
    ids = {}
    for obj in scene.objects:
        taught = pipe.teach(obj.name, scene.teach_frames, masks=[g == obj.instance_id for g in scene.teach_gt])
        ids[obj.name] = (taught.concept.instance_id, obj.instance_id)
    tally = _Tally()
    for i, frame in enumerate(scene.frames):
        tick = time.perf_counter()
        result = pipe.process(frame)
        tally.frame_times.append(time.perf_counter() - tick)
        found = {s.label for s in result.segments}
        for obj in scene.objects:
            ours, theirs = ids[obj.name]
            present, predicted = scene.present(i, obj.name), obj.name in found
            gt = scene.gt[i] == theirs
            pred = result.instance_mask == ours if predicted else None
            if present:
                tally.ious.append(iou(pred if pred is not None else np.zeros_like(gt), gt))
            tally.presence[0] += present and predicted
            tally.presence[1] += predicted and not present
            tally.presence[2] += present and not predicted
            outcome = classify_outcome(pred, gt)
            tally.outcomes.add(outcome, lookalike_as_mine(pred, scene.lookalike_mask(i, obj.name)))
            if explain:
                judged = pipe.judge_region(obj.name, frame, gt) if outcome == "miss" else None
                tally.causes.append(explain_pair(outcome, pipe.identity_trace.get(obj.name, []), gt,
                                                 truth_passes(outcome, judged)))
    return num_objects, tally


def _quality_arguments_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the quality part's options, or None."""
    from perovss_ros.sim.camera import OPTIONS
    from perovss_ros.sim.scenes import MAX_HARD_LOOKALIKES_PER_OBJECT, MAX_LOOKALIKES

    if args.sequences < 1 or args.first_seed < 0:
        return f"--sequences {args.sequences} --first-seed {args.first_seed}: use at least 1 sequence from seed 0 up"
    try:
        camera(args)
    except ValueError as exc:
        return f"{OPTIONS}: {exc}"
    per_object = args.lookalikes_per_object
    # Easy scenes have up to 3 personal objects and 12 look-alikes in all.
    most = MAX_HARD_LOOKALIKES_PER_OBJECT if args.difficulty == "hard" else MAX_LOOKALIKES // 3
    if per_object is not None and not 0 <= per_object <= most:
        return f"--lookalikes-per-object {per_object}: use 0..{most} for {args.difficulty} scenes"
    return None


def run_quality(args: argparse.Namespace) -> dict:
    """Run the quality part; prints one line per sequence and the totals, returns the totals.

    The result has ``miou``, ``precision``/``recall`` (presence), ``pairs_present``,
    ``wrong_object_fraction`` (of present pairs), ``outcomes`` (counts, see
    ``OutcomeCounts.as_dict``), ``median_frame_ms`` (``process()``), ``seconds``, ``met``
    (all targets), the scene settings, and ``per_sequence`` (seed, objects and the same numbers);
    with ``--explain`` also ``causes`` (``bench/core_explain.py``: cause -> pairs).
    """
    per_object = lookalikes_per_object(args)
    seeds = list(range(args.first_seed, args.first_seed + args.sequences))
    total = _Tally()
    per_sequence = []
    start = time.perf_counter()
    for seed in seeds:
        num_objects, tally = _run_sequence(args, seed, per_object)
        total.add(tally)
        seq = {"seed": seed, "objects": num_objects, **tally.summary()}
        per_sequence.append(seq)
        print(f"  seq {seed:4d}  objects {num_objects}  mIoU {seq['miou']:.3f}  P/R {seq['precision']:.3f}/"
              f"{seq['recall']:.3f}  {_outcome_text(seq)}  wrong {100 * seq['wrong_object_fraction']:.1f} %  "
              f"median {seq['median_frame_ms']:.1f} ms", flush=True)
    seen = camera(args)
    result = {**total.summary(), "seconds": time.perf_counter() - start, "difficulty": args.difficulty,
              "camera": seen.describe(),
              "seeds": seeds, "lookalikes_per_object": per_object, "per_sequence": per_sequence}
    result["met"] = (result["miou"] >= TARGET_MIOU and result["wrong_object_fraction"] <= TARGET_WRONG_OBJECT
                     and result["precision"] >= TARGET_PRESENCE and result["recall"] >= TARGET_PRESENCE)
    span = f"{seeds[0]}..{seeds[-1]}" if seeds else "none"
    through = f", camera {seen.describe()}" if seen.active else ""
    print(f"quality ({args.backend}, {args.difficulty}, seeds {span} × {args.frames} frames, {args.size}, "
          f"{per_object} look-alikes per object{through}): "
          f"mIoU {result['miou']:.3f} (target {TARGET_MIOU})  wrong object "
          f"{100 * result['wrong_object_fraction']:.1f} % of {result['pairs_present']} present pairs (target ≤ "
          f"{100 * TARGET_WRONG_OBJECT:.0f} %)  presence precision {result['precision']:.3f} recall "
          f"{result['recall']:.3f} (target {TARGET_PRESENCE})  -> {'MET' if result['met'] else 'NOT MET'}")
    print(f"  outcomes: {_outcome_text(result)}")
    print(f"  median process() {result['median_frame_ms']:.1f} ms/frame, {result['seconds']:.0f} s total")
    if getattr(args, "explain", False):
        from perovss_ros.bench.core_explain import explain_counts, explain_text

        result["causes"] = dict(explain_counts(total.causes))
        print(explain_text(explain_counts(total.causes)))
    return result


def run_memory(args: argparse.Namespace) -> dict:
    """Per-frame peak Python allocation and RSS over ``--memory-frames`` frames: first tenth vs last tenth."""
    import tracemalloc

    import psutil

    from perovss_ros.sim.scenes import make_scene

    scene = make_scene(seed=1, num_frames=60, size=_size(args.size), num_objects=2, num_lookalikes=4)
    pipe = _pipeline(args)
    for obj in scene.objects:
        pipe.teach(obj.name, scene.teach_frames, masks=[g == obj.instance_id for g in scene.teach_gt])
    process = psutil.Process()
    peaks, rss = [], []
    tracemalloc.start()
    try:
        for i in range(args.memory_frames):
            tracemalloc.reset_peak()
            pipe.process(scene.frames[i % len(scene.frames)])
            peaks.append(tracemalloc.get_traced_memory()[1] / 2**20)
            rss.append(process.memory_info().rss / 2**20)
    finally:
        tracemalloc.stop()
    tenth = max(1, len(peaks) // 10)
    result = {
        "peak_first_mb": statistics.median(peaks[:tenth]), "peak_last_mb": statistics.median(peaks[-tenth:]),
        "rss_first_mb": statistics.median(rss[:tenth]), "rss_last_mb": statistics.median(rss[-tenth:]),
    }
    print(f"memory ({args.backend}, {args.memory_frames} frames): per-frame peak (tracemalloc) "
          f"first {result['peak_first_mb']:.2f} MB, last {result['peak_last_mb']:.2f} MB; "
          f"RSS first {result['rss_first_mb']:.0f} MB, last {result['rss_last_mb']:.0f} MB "
          f"(medians of the first and last {tenth} frames)")
    return result


def run(args: argparse.Namespace) -> int:
    """Run the parts asked for by ``--part``."""
    results = {}
    if args.part in ("quality", "labels", "all"):
        problem = _quality_arguments_problem(args)
        if problem:
            print(f"perovss bench core: {problem}", file=sys.stderr)
            return 1
    if args.part in ("quality", "all"):
        results["quality"] = run_quality(args)
    if args.part in ("memory", "all"):
        results["memory"] = run_memory(args)
    if args.part in ("scaling", "all"):
        scaling = _scaling_module()
        if scaling is None:
            print("scaling: perovss_ros/bench/core_scaling.py is not available; skipped")
        else:
            results["scaling"] = scaling.run_scaling(args)
    if args.part == "encoders":
        from perovss_ros.bench import core_encoders

        results["encoders"] = core_encoders.run_encoders(args)
    if args.part == "labels":
        from perovss_ros.bench import core_labels

        results["labels"] = core_labels.run_labels(args)
    return 0
