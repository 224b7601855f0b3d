"""``perovss eval SOURCE``: run the pipeline (in process, or through the running node with --live) over a bag,
a PerSeg folder or a DAVIS folder and report metrics."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

#: See perovss_ros.ros.client: this short-lived process exits without rclpy teardown.
EXIT_WITHOUT_TEARDOWN = True
HELP = ("evaluate the pipeline on a bag (perovss sim or any image+mask bag), a PerSeg or a DAVIS folder: "
        "mIoU, boundary IoU, J&F, presence and IoU precision/recall, outcomes (right, spill, wrong object, "
        "partial, miss, false alarm, true absent), open-vocabulary metrics on category ground truth (IoU^per, "
        "generic mIoU, look-alikes taken as personal, right categories; also from Gazebo labels maps), fps, "
        "plots, report")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Source, output and pipeline options of ``perovss eval``."""
    parser.add_argument("source", help="bag directory, PerSeg folder (Images/, Annotations/) or DAVIS folder")
    parser.add_argument("--kind", choices=["auto", "bag", "perseg", "davis"], default="auto",
                        help="what SOURCE is (default: detected)")
    parser.add_argument("--out", default="eval_out", help="output directory (default: eval_out)")
    parser.add_argument("--backend", choices=["auto", "classic", "sam"], default=None,
                        help="pipeline backend (default: from --config, else auto)")
    parser.add_argument("--model", choices=["tiny", "vit_b", "vit_l", "vit_h"], default=None,
                        help="SAM model (default: from --config, else vit_b)")
    parser.add_argument("--seed", type=int, default=None, help="pipeline seed (default: from --config, else 0)")
    parser.add_argument("--config", default=None,
                        help="pipeline YAML (plain keys, or a ROS parameter file: its pipeline keys are used)")
    parser.add_argument("--image-topic", default=None, help="bag: camera topic (default: detected)")
    parser.add_argument("--mask-topic", default=None,
                        help="bag: ground-truth mask topic (default: /perovss/ground_truth when present)")
    parser.add_argument("--teach-frames", default=None, metavar="I,J,K",
                        help="bag: teach from these frame indices with their masks from the mask topic "
                             "(default: the bag's /perovss/teach topics)")
    parser.add_argument("--objects", default=None, metavar="A,B",
                        help="PerSeg objects or DAVIS sequences to evaluate (default: all)")
    parser.add_argument("--resolution", default="480p", help="DAVIS resolution folder (default: 480p)")
    parser.add_argument("--vocabulary", default=None, metavar="A,B",
                        help="classes the generic mIoU averages over (default: every class of the ground truth)")
    parser.add_argument("--no-teach", action="store_true",
                        help="teach no personal concept: the generic-labelling baseline for --compare-with")
    parser.add_argument("--compare-with", default=None, metavar="DIR",
                        help="an earlier run's output directory (or its metrics.json), run with --no-teach on the "
                             "same source: compare its generic mIoU with this run's (personal concepts taught)")
    parser.add_argument("--worst", type=int, default=12, help="frames on the contact sheet (default: 12)")
    parser.add_argument("--no-predictions", action="store_true", help="do not write per-frame prediction PNGs")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    gz = parser.add_argument_group("Gazebo: ground truth from a segmentation camera's labels_map topic")
    gz.add_argument("--gazebo-labels-topic", default=None, metavar="T",
                    help="bag: the bridged labels_map topic (sensor_msgs/Image rgb8); personal, all-object and "
                         "category ground truth come from it; teach with --teach-frames")
    gz.add_argument("--gazebo-mode", choices=("panoptic", "semantic"), default="panoptic",
                    help="the segmentation camera's <segmentation_type>: panoptic/instance (label and instance "
                         "count) or semantic (label only) (default: panoptic)")
    gz.add_argument("--gazebo-layout", choices=("bridged", "opencv"), default="bridged",
                    help="byte layout of the labels map: bridged (ros_gz_bridge: label in byte 2, instance count "
                         "little endian in bytes 0-1) or opencv (made from the saved PNGs read in BGR order: label "
                         "in channel 0, count channel1*256 + channel2) (default: bridged)")
    gz.add_argument("--label-table", default=None, metavar="YAML",
                    help="label id -> category word: a YAML file, or inline YAML such as '{10: mug, 20: ball}'")
    gz.add_argument("--personal", action="append", default=[], metavar="NAME=LABEL[:INSTANCE]",
                    help="a personal object by its Gazebo label and instance count, e.g. my_mug=10:2 "
                         "(repeatable; LABEL alone when it has a label of its own)")
    live = parser.add_argument_group("live: through a running `perovss node` instead of an in-process pipeline")
    live.add_argument("--live", action="store_true",
                      help="teach over the node's ~/teach, publish each frame on --live-topic and score the "
                           "node's ~/segmentation answer (lock-step); the taught concepts are forgotten afterwards")
    live.add_argument("--node", default="/perovss", help="live: the node's full name (default: /perovss)")
    live.add_argument("--live-topic", default="/camera/image_raw",
                      help="live: topic the node takes its images from; nothing else may publish there "
                           "(default: /camera/image_raw)")
    live.add_argument("--wait", type=float, default=60.0,
                      help="live: seconds to wait for the node to subscribe (default: 60)")
    live.add_argument("--frame-timeout", type=float, default=60.0,
                      help="live: seconds to wait for each frame's segmentation (default: 60)")


def _ints(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        from perovss_ros.core.errors import InvalidInputError

        raise InvalidInputError(f"--teach-frames {text!r}: give comma-separated frame indices, e.g. 0,20,40") from None


def gazebo_source(args: argparse.Namespace):
    """The ``GazeboSource`` of --gazebo-labels-topic/--label-table/--personal, or None without a labels topic."""
    from perovss_ros.core.errors import InvalidInputError

    if not args.gazebo_labels_topic:
        if args.label_table or args.personal:
            raise InvalidInputError("--label-table and --personal go with --gazebo-labels-topic")
        return None
    from perovss_ros.eval.gazebo import load_label_table, parse_personal
    from perovss_ros.eval.sources import GazeboSource

    if not args.label_table:
        raise InvalidInputError("--gazebo-labels-topic needs --label-table (label id -> category word)")
    return GazeboSource(topic=args.gazebo_labels_topic, mode=args.gazebo_mode,
                        table=load_label_table(args.label_table),
                        personal=tuple(parse_personal(p) for p in args.personal), layout=args.gazebo_layout)


def compare_with(result, earlier: str) -> dict:
    """``open_vocab.compare_runs`` of an earlier run's ``metrics.json`` (without personal concepts) and
    ``result`` (with them); stored in ``result.open_vocab["comparison"]``. InvalidInputError when it cannot."""
    import json
    from pathlib import Path

    from perovss_ros.core.errors import InvalidInputError
    from perovss_ros.eval.open_vocab import compare_runs

    path = Path(earlier)
    path = path / "metrics.json" if path.is_dir() else path
    try:
        before = json.loads(path.read_text(encoding="utf-8")).get("open_vocab")
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"--compare-with {earlier}: cannot read {path}: {exc}") from exc
    if not before or not result.open_vocab:
        raise InvalidInputError(f"--compare-with {earlier}: both runs need open-vocabulary numbers (category "
                                "ground truth)")
    comparison = {"without": str(path), **compare_runs(before, result.open_vocab)}
    result.open_vocab["comparison"] = comparison
    return comparison


def _words(text: str | None) -> list[str] | None:
    return [w.strip() for w in text.split(",") if w.strip()] if text else None


def pipeline_config(args: argparse.Namespace) -> dict:
    """The pipeline configuration of an evaluation: --config, then --backend/--model/--seed, in-memory store.

    The concept store is always in memory, so an evaluation never adds
    concepts to (or loads them from) the user's store.
    """
    from perovss_ros.core.config import PipelineConfig

    values: dict = {}
    if args.config:
        import yaml

        from perovss_ros.core.errors import InvalidInputError

        try:
            with open(args.config, encoding="utf-8") as handle:
                loaded = yaml.safe_load(handle) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise InvalidInputError(f"cannot read config {args.config}: {exc}") from exc
        if not isinstance(loaded, dict):
            raise InvalidInputError(f"config {args.config} must be a mapping")
        ros = [v["ros__parameters"] for v in loaded.values() if isinstance(v, dict) and "ros__parameters" in v]
        allowed = set(PipelineConfig.keys())
        # A ROS 2 parameter file: keep the keys the pipeline knows; a plain file is taken as it is.
        values = {k: v for k, v in ros[0].items() if k in allowed} if ros else dict(loaded)
    for key in ("backend", "model", "seed"):
        if getattr(args, key) is not None:
            values[key] = getattr(args, key)
    values["concept_store"] = ""
    PipelineConfig.from_dict(values)  # unknown keys or bad values fail here, before any work
    return values


def evaluate_live(sequences: list, args: argparse.Namespace, meta: dict):
    """Evaluate ``sequences`` through the running node: teach over ~/teach, stream frames, score answers.

    Returns an ``EvalResult``; ``speed`` then measures publish-to-answer time.
    Refuses (InvalidInputError) to touch a concept the node already has.
    """
    from perovss_interfaces.srv import Teach

    from perovss_ros.core.errors import InvalidInputError
    from perovss_ros.eval.open_vocab import predicted_segments
    from perovss_ros.eval.runner import ConceptMap, EvalRecorder
    from perovss_ros.ros.client import PerovssClient
    from perovss_ros.ros.demo import FrameStreamer
    from perovss_ros.ros.image_conversion import mask_to_image, rgb_to_image

    recorder = EvalRecorder(args.out, save_predictions=not args.no_predictions, worst_k=args.worst,
                            vocabulary=_words(args.vocabulary))
    client = PerovssClient(args.node, teardown=False)
    streamer = FrameStreamer(node_name=args.node.strip("/"), image_topic=args.live_topic, teardown=False)
    unanswered = 0
    try:
        if not streamer.wait_for_node(timeout=args.wait):
            raise InvalidInputError(f"no node subscribes to {args.live_topic} within {args.wait:g} s; start "
                                    f"`perovss node` with its image topic remapped there (image:={args.live_topic})")
        existing = {c.name for c in client.concepts().concepts}
        clash = sorted(existing & {c.name for seq in sequences for c in seq.concepts})
        if clash:
            raise InvalidInputError(f"the node already has concept(s) {', '.join(clash)}; forget them first or "
                                    "evaluate against a node with another concept store")
        for seq in sequences:
            maps = []
            for spec in seq.concepts:
                request = Teach.Request(name=spec.name, images=[rgb_to_image(rgb) for rgb, _ in spec.shots],
                                        masks=[mask_to_image(mask) for _, mask in spec.shots])
                response = client.teach(request, timeout=max(args.frame_timeout, 120.0))
                if not response.success:
                    recorder.add_teach(spec.name, {"sequence": seq.name, "error": response.message})
                    continue
                recorder.add_teach(spec.name, {"sequence": seq.name, "shots": len(spec.shots),
                                               "self_iou": float(response.self_iou)})
                # The Concept message carries no instance id: pixels are re-labelled per frame from the
                # segments' labels to a stable id of our own (1..K), which the predictions are saved with.
                maps.append(ConceptMap(spec.name, len(maps) + 1, spec.gt_id, spec.lookalike_ids))
            ids = {m.name: m.pred_id for m in maps}
            try:
                for frame in seq.frames():
                    answer = streamer.send(frame.index, frame.rgb, args.frame_timeout)
                    unanswered += answer.instance_mask is None  # scored as "nothing found", and counted
                    mask = answer.relabel(ids, frame.rgb.shape[:2])
                    scores = {s.label: float(s.score) for s in answer.segments if s.personal}
                    recorder.add(seq.name, frame.index, frame.rgb, mask, frame.gt, maps, answer.latency_s,
                                 None, scores, objects=frame.objects)
                    if seq.categories is not None:
                        segments = ([] if answer.instance_mask is None
                                    else predicted_segments(answer.instance_mask, answer.segments))
                        recorder.add_open_vocab(seq.name, frame.index, frame.rgb, segments, maps, seq.categories,
                                                frame.gt, frame.classes, frame.objects)
            finally:
                for m in maps:
                    client.forget(m.name)
    finally:
        streamer.close()
        client.close()
    recorder.write_index()
    return recorder.result({**meta, "live": {"node": args.node, "topic": args.live_topic,
                                             "unanswered_frames": unanswered},
                            "sequences": [s.name for s in sequences]})


def run(args: argparse.Namespace) -> int:
    """0 when the evaluation ran and its report was written; 1 on bad input."""
    import random

    import cv2
    import numpy as np
    import torch

    from perovss_ros.core import build_pipeline
    from perovss_ros.core.errors import PerovssError
    from perovss_ros.eval.report import open_vocab_line, outcome_line, write_report
    from perovss_ros.eval.runner import evaluate
    from perovss_ros.eval.sources import load_sequences

    try:
        config = pipeline_config(args)
        objects = [o.strip() for o in args.objects.split(",")] if args.objects else None
        kind, sequences = load_sequences(args.source, args.kind, image_topic=args.image_topic,
                                         mask_topic=args.mask_topic, teach_frames=_ints(args.teach_frames),
                                         objects=objects, resolution=args.resolution, gazebo=gazebo_source(args))
        if args.no_teach:
            sequences = [replace(seq, concepts=[]) for seq in sequences]
        seed = int(config.get("seed", 0))
        meta = {"source": str(args.source), "kind": kind, "seed": seed, **({"no_teach": True} if args.no_teach else {})}
        if args.live:
            print(f"evaluating {args.source} ({kind}, {len(sequences)} sequence(s)) through the node "
                  f"{args.node}, frames on {args.live_topic}", flush=True)
            result = evaluate_live(sequences, args, meta)
        else:
            # Everything random in the run (GrabCut's k-means in OpenCV, torch) starts from the seed.
            cv2.setRNGSeed(seed)
            torch.manual_seed(seed)
            np.random.seed(seed)
            random.seed(seed)
            pipeline = build_pipeline(config)
            print(f"evaluating {args.source} ({kind}, {len(sequences)} sequence(s)) with the "
                  f"{pipeline.backend_name} backend ({pipeline.model_id})", flush=True)
            result = evaluate(sequences, pipeline, args.out, progress=not args.quiet, worst_k=args.worst,
                              meta={**meta, "config": config}, save_predictions=not args.no_predictions,
                              vocabulary=_words(args.vocabulary))
        comparison_error = None
        if args.compare_with:
            try:
                compare_with(result, args.compare_with)
            except PerovssError as exc:
                comparison_error = str(exc)  # the run itself is fine: write its report, then fail
        paths = write_report(result, args.out)
    except (PerovssError, OSError) as exc:
        print(f"perovss eval: {exc}", file=sys.stderr)
        return 1
    o = result.overall
    if o:
        print(f"mIoU {o['miou']:.3f}  boundary IoU {o['boundary_iou']:.3f}  J&F {o['jf']:.3f}  "
              f"presence P/R {o['presence_precision']:.3f}/{o['presence_recall']:.3f}  "
              f"IoU P/R {o['iou_precision']:.3f}/{o['iou_recall']:.3f}  {result.speed['fps']:.2f} fps")
        print("outcomes: " + outcome_line(o["outcomes"]))
    elif args.no_teach:
        print("taught nothing (--no-teach): no personal numbers")
    elif not result.open_vocab:
        print("no ground truth in the source: nothing scored (predictions and speed were written)")
    if result.open_vocab:
        print("open vocabulary: " + open_vocab_line(result.open_vocab))
    comparison = result.open_vocab.get("comparison") if result.open_vocab else None
    if comparison:
        verdict = "within" if comparison["within_tolerance"] else "NOT within"
        print(f"generic mIoU with personal concepts {comparison['miou_with']:.3f}, without "
              f"{comparison['miou_without']:.3f}: {comparison['delta_points']:+.2f} points, {verdict} "
              f"{comparison['tolerance_points']:g}")
        outside = comparison.get("outside_personal") or {}
        if outside:
            print(f"  outside the personal objects' pixels: with {outside['miou_with']:.3f}, without "
                  f"{outside['miou_without']:.3f}: {outside['delta_points']:+.2f} points")
    for name, path in paths.items():
        print(f"  {name}: {path}")
    if comparison_error:
        print(f"perovss eval: cannot compare: {comparison_error}", file=sys.stderr)
        return 1
    return 0
