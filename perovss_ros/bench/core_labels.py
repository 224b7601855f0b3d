"""``perovss bench core --part labels``: issue 9's open-vocabulary figures on synthetic scenes.

Per scene (seeds ``--first-seed`` .. + N-1, ``--difficulty``, 1 + seed % 3 personal objects with
their look-alikes, taught from the scene's teaching frames) three pipelines of ``--backend`` see
every frame, in turn (the order rotates each frame, so a slow moment of the shared machine is
spread over all three):

* ``on``: labelling on (synthetic CLIP, vocabulary = the scenes' object words, ``--label-every``,
  ``--personal-fusion``) with the personal objects taught (each with its category word);
* ``off``: labelling off, the same objects taught (the baseline of IoU^per and of the time);
* ``untaught``: labelling on, nothing taught (the generic mIoU "without" personal concepts).

Each is scored with ``eval/open_vocab.py``'s ``OpenVocabScorer``. Reported against the issue's floors:

* right category: share of ground-truth object-frames that are no taught concept's with a segment
  of their category at IoU ≥ 0.5 (≥ 0.90);
* IoU^per of the personal objects, on against off (on no worse);
* personal false positives on same-category look-alike object-frames (≤ 2 %);
* generic mIoU taught against untaught (``compare_runs``, within 1 point);
* mean ``process()`` time on / off (≤ 1.3×) with the mean of every ``timings`` stage.

The CLIP is the synthetic one (``perovss models build synthetic-clip``, cached): it knows only the
synthetic world, which is what these scenes are drawn from.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

TARGET_RIGHT_CATEGORY = 0.90
TARGET_LOOKALIKE_FP = 0.02
TARGET_TIME_RATIO = 1.3
RUNS = ("on", "off", "untaught")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """--label-every, --personal-fusion (the other options are the quality part's)."""
    parser.add_argument("--label-every", type=int, default=5,
                        help="labels part: label the scene every N frames (default: 5)")
    parser.add_argument("--personal-fusion", action="store_true",
                        help="labels part: the labelled pipelines fuse the personal CLIP embedding with the identity "
                             "(config personal_fusion)")


def _vocabulary() -> list[str]:
    from perovss_ros.sim.categories import OBJECT_WORDS

    return list(OBJECT_WORDS)


def _categories(scene):
    """The scene's ``CategoryTable``: class ids, every drawn object's category, the object words."""
    from perovss_ros.eval.open_vocab import CategoryTable

    return CategoryTable(class_names=dict(scene.class_names),
                         object_categories={oid: obj.shape for oid, obj in scene.object_ids.items()},
                         vocabulary=tuple(_vocabulary()))


def _pipelines(args: argparse.Namespace, labeller) -> dict:
    """The three pipelines of the module docstring (``on`` and ``untaught`` share one CLIP)."""
    from perovss_ros.core import Pipeline, PipelineConfig
    from perovss_ros.core.registry import build_backend

    out = {}
    for run in RUNS:
        cfg = PipelineConfig(backend=args.backend, model=args.model, concept_store="",
                             identity=getattr(args, "identity", True), labels=run != "off",
                             vocabulary=_vocabulary(), label_every=args.label_every,
                             personal_fusion=args.personal_fusion)
        name, encoder, decoder = build_backend(cfg)
        out[run] = Pipeline(cfg, encoder, decoder, name, labeller=labeller if run != "off" else None)
    return out


def _run_scene(args: argparse.Namespace, seed: int, per_object: int, labeller, scorers: dict,
               times: dict[str, list[float]], stages: dict[str, dict[str, list[float]]]) -> None:
    """Teach and run one scene through the three pipelines, adding to ``scorers``, ``times`` and ``stages``."""
    from perovss_ros.bench.core import quality_scene
    from perovss_ros.eval.open_vocab import PersonalTruth, predicted_segments

    scene = quality_scene(args, seed, per_object)
    table = _categories(scene)
    pipes = _pipelines(args, labeller)
    for run in ("on", "off"):
        for obj in scene.objects:
            pipes[run].teach(obj.name, scene.teach_frames, masks=[g == obj.instance_id for g in scene.teach_gt],
                             category=obj.shape)
    truth = [PersonalTruth(obj.name, obj.instance_id) for obj in scene.objects]
    for i, frame in enumerate(scene.frames):
        for k in range(len(RUNS)):
            run = RUNS[(i + k) % len(RUNS)]
            tick = time.perf_counter()
            result = pipes[run].process(frame)
            times[run].append(time.perf_counter() - tick)
            for stage, seconds in result.timings.items():
                stages[run].setdefault(stage, []).append(seconds)
            segments = predicted_segments(result.instance_mask, result.segments)
            if run == "off":  # no category words: only IoU^per and the look-alike count mean something
                scorers[run].add(segments, truth, table, scene.gt[i], None, scene.object_gt[i])
            else:
                scorers[run].add(segments, truth if run == "on" else [], table, scene.gt[i], scene.class_gt[i],
                                 scene.object_gt[i])


def _stage_text(stages: dict[str, list[float]], frames: int) -> str:
    """Mean ms per frame of every stage (a stage absent in a frame counts 0 there)."""
    return "  ".join(f"{k} {1000 * sum(v) / frames:.1f}" for k, v in stages.items() if k != "total")


def run_labels(args: argparse.Namespace) -> dict:
    """Run the labels part; prints the figures against their floors and returns them.

    Result keys: ``right_category`` (non-personal fraction), ``iou_per_on``/``iou_per_off``,
    ``lookalike_fp`` (fraction), ``lookalike_object_frames``, ``miou_with``/``miou_without``/``delta_points``,
    ``ms_on``/``ms_off``/``time_ratio``, ``stages_ms`` (run -> stage -> mean ms per frame), ``met`` (per
    figure), ``summaries`` (each run's ``OpenVocabScorer.summary()``), the scene settings.
    """
    from perovss_ros.bench.core import lookalikes_per_object
    from perovss_ros.core.config import PipelineConfig
    from perovss_ros.core.errors import InvalidInputError
    from perovss_ros.core.labelling import build_region_labeller
    from perovss_ros.eval.open_vocab import COMPARE_TOLERANCE_POINTS, OpenVocabScorer, compare_runs

    per_object = lookalikes_per_object(args)
    seeds = list(range(args.first_seed, args.first_seed + args.sequences))
    labeller = build_region_labeller(PipelineConfig(labels=True, vocabulary=_vocabulary()))
    scorers = {run: OpenVocabScorer(_vocabulary()) for run in RUNS}
    times: dict[str, list[float]] = {run: [] for run in RUNS}
    stages: dict[str, dict[str, list[float]]] = {run: {} for run in RUNS}
    start = time.perf_counter()
    for seed in seeds:
        _run_scene(args, seed, per_object, labeller, scorers, times, stages)
        on = scorers["on"].summary()
        print(f"  seed {seed:4d}  right category {on['right_category']['non_personal']['fraction']:.3f}  "
              f"IoU^per on {on['iou_per_mean']:.3f} off {scorers['off'].summary()['iou_per_mean']:.3f}  "
              f"look-alike FP {on['lookalike_fp']['as_personal']}/{on['lookalike_fp']['object_frames']}  "
              f"time on/off {np.mean(times['on']) / np.mean(times['off']):.2f}× (running totals)", flush=True)
    summaries = {run: scorers[run].summary() for run in RUNS}
    on, off = summaries["on"], summaries["off"]
    try:
        compared = compare_runs(summaries["untaught"], on)
    except InvalidInputError as exc:  # a run labelled nothing (e.g. tiny SAM's random weights): no comparison
        print(f"  generic mIoU taught against untaught not measurable: {exc}")
        nan = float("nan")
        compared = {"miou_with": nan, "miou_without": nan, "delta_points": nan, "within_tolerance": False,
                    "tolerance_points": COMPARE_TOLERANCE_POINTS,
                    "outside_personal": {"miou_with": nan, "miou_without": nan, "delta_points": nan}}
    frames = len(times["on"])
    ms = {run: 1000 * float(np.mean(times[run])) for run in RUNS}
    result = {
        "right_category": on["right_category"]["non_personal"]["fraction"],
        "right_category_object_frames": on["right_category"]["non_personal"]["object_frames"],
        "iou_per_on": on["iou_per_mean"], "iou_per_off": off["iou_per_mean"],
        "lookalike_fp": on["lookalike_fp"]["fraction"],
        "lookalike_fp_off": off["lookalike_fp"]["fraction"],
        "lookalike_object_frames": on["lookalike_fp"]["object_frames"],
        "miou_with": compared["miou_with"], "miou_without": compared["miou_without"],
        "delta_points": compared["delta_points"],
        "outside_personal": compared["outside_personal"],
        "ms_on": ms["on"], "ms_off": ms["off"], "time_ratio": ms["on"] / ms["off"],
        "stages_ms": {run: {k: 1000 * sum(v) / frames for k, v in stages[run].items()} for run in RUNS},
        "summaries": summaries, "seeds": seeds, "difficulty": args.difficulty, "backend": args.backend,
        "frames": frames, "label_every": args.label_every, "personal_fusion": args.personal_fusion,
        "seconds": time.perf_counter() - start,
    }
    result["met"] = {
        "right_category": result["right_category"] >= TARGET_RIGHT_CATEGORY,
        "iou_per": result["iou_per_on"] >= result["iou_per_off"],
        "lookalike_fp": result["lookalike_fp"] <= TARGET_LOOKALIKE_FP,
        "miou_with_without": compared["within_tolerance"],
        "time_ratio": result["time_ratio"] <= TARGET_TIME_RATIO,
    }
    met = result["met"]

    def verdict(key: str) -> str:
        return "met" if met[key] else "NOT MET"

    span = f"{seeds[0]}..{seeds[-1]}" if seeds else "none"
    print(f"labels ({args.backend}{' ' + args.model if args.backend == 'sam' else ''}, {args.difficulty}, seeds "
          f"{span} × {args.frames} frames, {args.size}, label every {args.label_every}, personal fusion "
          f"{'on' if args.personal_fusion else 'off'}, {frames} frames per run):")
    print(f"  right category (non-personal objects, IoU ≥ 0.5): {result['right_category']:.3f} of "
          f"{result['right_category_object_frames']} object-frames (floor {TARGET_RIGHT_CATEGORY}) "
          f"-> {verdict('right_category')}")
    print(f"  IoU^per: labelling on {result['iou_per_on']:.3f}, off {result['iou_per_off']:.3f} "
          f"(on no worse) -> {verdict('iou_per')}")
    print(f"  look-alikes labelled as the personal concept: {on['lookalike_fp']['as_personal']} of "
          f"{result['lookalike_object_frames']} object-frames = {100 * result['lookalike_fp']:.1f} % "
          f"(labelling off: {100 * result['lookalike_fp_off']:.1f} %; floor ≤ {100 * TARGET_LOOKALIKE_FP:.0f} %) "
          f"-> {verdict('lookalike_fp')}")
    print(f"  generic mIoU: taught {result['miou_with']:.3f}, untaught {result['miou_without']:.3f}, "
          f"{result['delta_points']:+.2f} points (within {compared['tolerance_points']:.0f}) "
          f"-> {verdict('miou_with_without')}")
    outside = result["outside_personal"]
    print(f"    outside the personal objects' pixels: taught {outside['miou_with']:.3f}, untaught "
          f"{outside['miou_without']:.3f}, {outside['delta_points']:+.2f} points")
    print(f"  mean process(): on {ms['on']:.1f} ms, off {ms['off']:.1f} ms = {result['time_ratio']:.2f}× "
          f"(≤ {TARGET_TIME_RATIO}×) -> {verdict('time_ratio')}; untaught {ms['untaught']:.1f} ms")
    for run in RUNS:
        print(f"    stages {run:8s} (mean ms/frame): {_stage_text(stages[run], frames)}")
    print(f"  {result['seconds']:.0f} s total")
    return result
