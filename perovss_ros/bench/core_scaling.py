"""Scaling benchmark: frames per second of the pipeline with K = 1, 2, 4, 8 concepts (``tiny`` SAM, CPU).

In the same run, a reference loop does what PerSAM's official per-object
scripts do: for every object, encode the frame again, compute its confidence
map, then make the three decoder calls (guided first decode, two refinements),
one object at a time. All configurations run on each frame in turn (round-robin), so
a load change on a shared machine hits them alike; medians over frames.

Run alone: ``python -m perovss_ros.bench.core_scaling`` (``--help`` for options);
``perovss bench core`` calls :func:`run_scaling`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

HELP = "frames per second with K concepts (tiny SAM, CPU) against PerSAM's per-object reference loop"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the scaling benchmark (also used under ``perovss bench core``)."""
    group = parser.add_argument_group("scaling (tiny SAM)")
    group.add_argument("--scaling-ks", default="1,2,4,8", help="numbers of concepts K, comma-separated")
    group.add_argument("--scaling-frames", type=int, default=8, help="timed frames per K (median reported)")
    group.add_argument("--scaling-warmup", type=int, default=2, help="untimed frames before each measurement")
    group.add_argument("--scaling-size", default="320x240", help="frame size WxH")
    group.add_argument("--scaling-reference-k", type=int, default=4, help="K of the per-object reference loop")
    group.add_argument("--scaling-threads", type=int, default=0,
                       help="torch CPU threads (0 = torch's default); 1 gives steadier numbers on a busy machine")
    group.add_argument("--scaling-seed", type=int, default=0, help="scene and model seed")
    group.add_argument("--scaling-runtime", choices=("torch", "onnxruntime"), default="torch",
                       help="runtime of the pipeline's SAM decoder (the reference loop always runs PyTorch)")


@dataclass
class _Reference:
    """What the per-object reference loop needs of one concept: its target vector and embedding."""

    target: torch.Tensor  # C, L2-normalised mean of the masked reference features
    embedding: torch.Tensor  # C, un-normalised mean (target-semantic prompting)


def _median_ms(values: list[float]) -> float:
    return 1000.0 * statistics.median(values)


def _reference_concept(encoder, rgb: np.ndarray, mask: np.ndarray) -> _Reference:
    """PerSAM's reference-shot step: masked features of the shot on the grid → target vectors."""
    features = encoder.encode(rgb)
    grid = features.grid
    height, width = mask.shape
    # The mask goes through the same resize + pad as the image, then down to the grid (as persam.py).
    size = (round(height * features.scale), round(width * features.scale))
    resized = F.interpolate(torch.from_numpy(mask)[None, None].float(), size=size, mode="bilinear")
    padded = torch.zeros(1, 1, encoder.img_size, encoder.img_size)
    padded[..., : size[0], : size[1]] = resized
    on_grid = F.interpolate(padded, size=tuple(grid.shape[-2:]), mode="bilinear")[0, 0] > 0
    local = grid[:, on_grid].T  # n×C
    mean = local.mean(0)
    return _Reference(target=mean / mean.norm(), embedding=mean)


def _reference_frame(encoder, decoder, rgb: np.ndarray, concepts: list[_Reference]) -> None:
    """One frame of the official per-object loop: encode per object, then three decoder calls per object."""
    from perovss_ros.core.types import Guidance, Prompts

    for concept in concepts:
        features = encoder.encode(rgb)
        grid = features.grid
        c, h, w = grid.shape
        sim = (concept.target @ (grid / grid.norm(dim=0, keepdim=True)).reshape(c, h * w)).reshape(1, 1, h, w)
        sim = F.interpolate(sim, scale_factor=4, mode="bilinear")
        sim = encoder.sam.postprocess_masks(sim, features.extra["sam_input_hw"], features.image_hw)[0, 0]
        flat_w = sim.shape[1]
        pos, neg = int(sim.argmax()), int(sim.argmin())
        points = np.array([[pos % flat_w, pos // flat_w], [neg % flat_w, neg // flat_w]], np.float32)
        labels = np.array([1, 0])
        bias = ((sim - sim.mean()) / sim.std())[None, None]
        bias = F.interpolate(bias, size=(h, w), mode="bilinear")[0, 0].sigmoid()
        guide = Guidance(attention_bias=bias, target_embedding=concept.embedding)
        first = decoder.decode(features, rgb, [Prompts(points, labels)], [guide])
        second = decoder.decode(features, rgb, [Prompts(points, labels, mask_logits=first.logits[0, :1],
                                                        multimask=True)])
        best = int(second.scores[0].argmax())
        ys, xs = np.nonzero(second.masks[0, best])
        box = (float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())) if xs.size else None
        decoder.decode(features, rgb, [Prompts(points, labels, box=box, mask_logits=second.logits[0, best:best + 1],
                                               multimask=True)])


def _interleaved(steps: dict[str, object], frames: list[np.ndarray], warmup: int, count: int
                 ) -> dict[str, list[float]]:
    """Run every ``steps[name](frame)`` on the same frame, round-robin, ``warmup`` + ``count`` frames.

    Interleaving makes a load change on a shared machine hit every configuration
    alike, so the ratios stay meaningful. Returns the timed seconds per name.
    """
    times: dict[str, list[float]] = {name: [] for name in steps}
    for i in range(warmup + count):
        frame = frames[i % len(frames)]
        for name, step in steps.items():
            tick = time.perf_counter()
            step(frame)
            if i >= warmup:
                times[name].append(time.perf_counter() - tick)
    return times


def run_scaling(args: argparse.Namespace) -> dict:
    """Measure the pipeline at each K and the reference loop at ``--scaling-reference-k``; print a table.

    One pipeline per K (concept j is scene object j mod 3 under its own name),
    all measured frame by frame in turn with the reference loop.
    Returns ``{"k": {K: {"fps", "median_ms", "encode_ms", "decode_ms"}}, "reference": {...},
    "speedup_vs_reference": float, "time_ratio_kmax_k1": float, ...}``.
    """
    from perovss_ros.core import build_pipeline
    from perovss_ros.core.sam import SamMaskDecoder, build_sam_backend
    from perovss_ros.sim.scenes import make_scene

    ks = sorted({int(k) for k in str(args.scaling_ks).split(",") if k.strip()})
    if not ks or ks[0] < 1:
        raise ValueError(f"--scaling-ks must list positive integers, got {args.scaling_ks!r}")
    width, height = (int(v) for v in str(args.scaling_size).lower().split("x"))
    ref_k = int(args.scaling_reference_k)
    threads_before = torch.get_num_threads()
    if args.scaling_threads > 0:
        torch.set_num_threads(args.scaling_threads)
    try:
        seed = int(args.scaling_seed)
        scene = make_scene(seed=seed, num_frames=max(args.scaling_frames, 4), size=(width, height),
                           num_objects=3, num_lookalikes=2)
        names = [obj.name for obj in scene.objects]
        stages: dict[int, dict[str, list[float]]] = {}
        steps: dict[str, object] = {}
        for k in ks:
            pipe = build_pipeline({"backend": "sam", "model": "tiny", "presence": False, "concept_store": None,
                                   "seed": seed})
            if args.scaling_runtime != "torch":
                # PipelineConfig accepts runtime 'torch' only so far: swap in the same weights' ORT decoder.
                pipe.decoder = SamMaskDecoder(pipe.encoder.sam, runtime=args.scaling_runtime,
                                              threads=max(0, args.scaling_threads))
            for j in range(k):
                pipe.teach(f"concept_{j}", scene.teach_frames, masks=scene.teach_masks(names[j % len(names)]))
            stages[k] = {"encode": [], "decode": []}

            def step(frame, pipe=pipe, record=stages[k]) -> None:
                timings = pipe.process(frame).timings
                for key, values in record.items():
                    values.append(timings.get(key, 0.0))

            steps[f"k{k}"] = step

        encoder, decoder = build_sam_backend({"model": "tiny", "seed": seed})
        refs = [_reference_concept(encoder, scene.teach_frames[0], scene.teach_masks(names[j % len(names)])[0])
                for j in range(ref_k)]
        steps["reference"] = lambda frame: _reference_frame(encoder, decoder, frame, refs)
        times = _interleaved(steps, scene.frames, args.scaling_warmup, args.scaling_frames)
    finally:
        torch.set_num_threads(threads_before)

    skip = args.scaling_warmup
    results: dict = {"threads": args.scaling_threads or threads_before, "size": [width, height],
                     "runtime": args.scaling_runtime, "frames": args.scaling_frames, "k": {}}
    for k in ks:
        results["k"][k] = {
            "fps": 1.0 / statistics.median(times[f"k{k}"]),
            "median_ms": _median_ms(times[f"k{k}"]),
            "encode_ms": _median_ms(stages[k]["encode"][skip:]),
            "decode_ms": _median_ms(stages[k]["decode"][skip:]),
        }
    results["reference"] = {"k": ref_k, "fps": 1.0 / statistics.median(times["reference"]),
                            "median_ms": _median_ms(times["reference"])}
    if ref_k in results["k"]:
        results["speedup_vs_reference"] = results["reference"]["median_ms"] / results["k"][ref_k]["median_ms"]
    results["time_ratio_kmax_k1"] = results["k"][ks[-1]]["median_ms"] / results["k"][ks[0]]["median_ms"]
    _print_table(results, ks)
    return results


def _print_table(results: dict, ks: list[int]) -> None:
    width, height = results["size"]
    print(f"\nscaling, tiny SAM, CPU ({results['threads']} torch threads), {width}x{height}, presence off, "
          f"decoder runtime {results['runtime']}")
    print(f"{'K':>3} {'fps':>7} {'median ms':>10} {'encode ms':>10} {'decode ms':>10} {'decode/K':>9}")
    for k in ks:
        row = results["k"][k]
        print(f"{k:>3} {row['fps']:>7.2f} {row['median_ms']:>10.1f} {row['encode_ms']:>10.1f} "
              f"{row['decode_ms']:>10.1f} {row['decode_ms'] / k:>9.1f}")
    ref = results["reference"]
    print(f"reference per-object loop, K={ref['k']}: {ref['fps']:.2f} fps, {ref['median_ms']:.1f} ms/frame")
    if "speedup_vs_reference" in results:
        print(f"ours vs reference at K={ref['k']}: {results['speedup_vs_reference']:.2f}x faster (target >= 2.5)")
    print(f"time(K={ks[-1]}) / time(K={ks[0]}): {results['time_ratio_kmax_k1']:.2f} (target <= 2)")


def main(argv: list[str] | None = None) -> int:
    """``python -m perovss_ros.bench.core_scaling``."""
    parser = argparse.ArgumentParser(description=HELP)
    add_arguments(parser)
    run_scaling(parser.parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
