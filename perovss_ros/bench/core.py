"""``perovss bench core``: quality of the classic backend, memory over many frames, SAM scaling.

* quality: ``--sequences`` synthetic scenes (seeds 0..N-1) of ``--frames`` frames, 1-3 personal
  objects (1 + seed % 3) with 2 look-alikes each, taught from the scene's 3 teaching frames;
  mIoU over (frame, object) pairs where the object is present, presence precision/recall over
  all pairs. Targets: mIoU >= 0.80, precision and recall >= 0.95.
* memory: ``--memory-frames`` frames through one pipeline; per-frame Python peak (tracemalloc)
  and process RSS, first tenth against last tenth (flat means no growth with frames processed).
* scaling: engineer SAM's ``perovss_ros/bench/core_scaling.py`` (tiny SAM, K = 1, 2, 4, 8).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

HELP = "pipeline quality on synthetic scenes (classic), memory over many frames, and SAM scaling with K"
TARGET_MIOU = 0.80
TARGET_PRESENCE = 0.95


def _scaling_module():
    try:
        from perovss_ros.bench import core_scaling
    except ImportError:
        return None
    return core_scaling


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """--part, --sequences, --frames, --size, --backend, --model, --memory-frames (+ scaling options)."""
    parser.add_argument("--part", choices=("quality", "memory", "scaling", "all"), default="all")
    parser.add_argument("--sequences", type=int, default=20, help="synthetic sequences (seeds 0..N-1)")
    parser.add_argument("--frames", type=int, default=60, help="frames per sequence")
    parser.add_argument("--size", default="320x240", help="frame size WxH")
    parser.add_argument("--backend", default="classic", help="backend of the quality/memory parts")
    parser.add_argument("--model", default="tiny", help="SAM model when --backend sam")
    parser.add_argument("--memory-frames", type=int, default=200, help="frames of the memory part")
    scaling = _scaling_module()
    if scaling is not None:
        scaling.add_arguments(parser)


def _iou(pred: np.ndarray, gt: np.ndarray) -> float:
    try:
        from perovss_ros.eval.metrics import iou
    except ImportError:  # metrics land with SIMEVAL's eval package; same definition
        union = np.logical_or(pred, gt).sum()
        return float(np.logical_and(pred, gt).sum() / union) if union else 1.0
    return float(iou(pred, gt))


def _size(text: str) -> tuple[int, int]:
    width, height = (int(v) for v in text.lower().split("x"))
    return width, height


def _pipeline(args: argparse.Namespace):
    from perovss_ros.core import build_pipeline

    return build_pipeline({"backend": args.backend, "model": args.model, "concept_store": ""})


def run_quality(args: argparse.Namespace) -> dict:
    """Run the quality part; prints one line per sequence and the totals, returns the totals."""
    from perovss_ros.sim.scenes import make_scene

    ious: list[float] = []
    tp = fp = fn = 0
    frame_times: list[float] = []
    start = time.perf_counter()
    for seed in range(args.sequences):
        num_objects = 1 + seed % 3
        scene = make_scene(seed=seed, num_frames=args.frames, size=_size(args.size), num_objects=num_objects,
                           num_lookalikes=2 * num_objects)
        pipe = _pipeline(args)
        ids = {}
        for obj in scene.objects:
            taught = pipe.teach(obj.name, scene.teach_frames, masks=[g == obj.instance_id for g in scene.teach_gt])
            ids[obj.name] = (taught.concept.instance_id, obj.instance_id)
        seq_ious: list[float] = []
        seq = [0, 0, 0]
        for i, frame in enumerate(scene.frames):
            tick = time.perf_counter()
            result = pipe.process(frame)
            frame_times.append(time.perf_counter() - tick)
            found = {s.label for s in result.segments}
            for obj in scene.objects:
                ours, theirs = ids[obj.name]
                present, predicted = scene.present(i, obj.name), obj.name in found
                if present:
                    seq_ious.append(_iou(result.instance_mask == ours, scene.gt[i] == theirs))
                seq[0] += present and predicted
                seq[1] += predicted and not present
                seq[2] += present and not predicted
        tp, fp, fn = tp + seq[0], fp + seq[1], fn + seq[2]
        ious += seq_ious
        print(f"  seq {seed:2d}  objects {num_objects}  mIoU {np.mean(seq_ious):.3f}  "
              f"TP {seq[0]:3d} FP {seq[1]:3d} FN {seq[2]:3d}", flush=True)
    result = {
        "miou": float(np.mean(ious)) if ious else 0.0,
        "precision": tp / (tp + fp) if tp + fp else 1.0,
        "recall": tp / (tp + fn) if tp + fn else 1.0,
        "pairs_present": len(ious),
        "median_frame_ms": 1000 * statistics.median(frame_times) if frame_times else 0.0,
        "seconds": time.perf_counter() - start,
    }
    ok = (result["miou"] >= TARGET_MIOU and result["precision"] >= TARGET_PRESENCE
          and result["recall"] >= TARGET_PRESENCE)
    print(f"quality ({args.backend}, {args.sequences} sequences × {args.frames} frames, {args.size}): "
          f"mIoU {result['miou']:.3f} (target {TARGET_MIOU})  presence precision {result['precision']:.3f} "
          f"recall {result['recall']:.3f} (target {TARGET_PRESENCE})  -> {'MET' if ok else 'NOT MET'}")
    print(f"  median process() {result['median_frame_ms']:.1f} ms/frame, {result['seconds']:.0f} s total")
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
    return 0
