"""Encoder benchmark: the SAM image encoder per frame in PyTorch against its exported graph in ONNX Runtime.

For each model (``--encoder-models``, default ``mobile,vit_b``) one ``Sam`` is
built (seeded random weights for models with a checkpoint: the network's cost
without the download; the report says so) and run two ways on the same frames,
frame by frame in turn, with the same number of CPU threads: PyTorch
(``torch.set_num_threads``) and the exported encoder graph from the graph cache
(``graph_cache.cached_encoder``, onnxruntime's intra-op threads). The first
frame of the pair alternates, so neither runtime always runs on a warmer cache.
Each figure is the median of ``SamImageEncoder.encode`` (resize, normalise,
network: what the pipeline pays per frame); the embeddings of both runtimes are
compared on every frame (max absolute difference).

Exporting an encoder the first time takes a while (vit_b: minutes and several GB);
the graph is cached (``$PEROVSS_GRAPH_DIR``), and the export is not timed.

Run alone: ``python -m perovss_ros.bench.core_encoders`` (``--help``);
``perovss bench core --part encoders`` calls :func:`run_encoders`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
import torch

from perovss_ros.bench.core_gpu import weight_source

HELP = "SAM image encoder per frame: PyTorch against ONNX Runtime, same frames, same thread count"
TARGET_SPEEDUP = 1.5
"""Issue 10: onnxruntime at least 1.5x torch per frame for the vit_b and mobile encoders."""

# Per-model defaults: vit_b encodes a frame in seconds on a CPU, so fewer frames.
_FRAMES = {"tiny": 10, "mobile": 10, "vit_b": 3}
_WARMUP = {"tiny": 2, "mobile": 2, "vit_b": 1}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the encoder benchmark (also used under ``perovss bench core``)."""
    group = parser.add_argument_group("encoders (SAM image encoder, torch against onnxruntime)")
    group.add_argument("--encoder-models", default="mobile,vit_b",
                       help="SAM models, comma-separated (tiny, mobile, vit_b, vit_l); default mobile,vit_b")
    group.add_argument("--encoder-frames", type=int, default=None,
                       help="timed frames per model and runtime, median reported (default 10, vit_b 3)")
    group.add_argument("--encoder-warmup", type=int, default=None,
                       help="untimed frames first, per runtime (default 2, vit_b 1)")
    group.add_argument("--encoder-threads", type=int, default=0,
                       help="CPU threads of both runtimes (0 = torch's default count, given to onnxruntime too)")
    group.add_argument("--encoder-size", default="640x480", help="frame size WxH (the encoder resizes to its input)")
    group.add_argument("--encoder-seed", type=int, default=0, help="frames and random-weights seed")
    group.add_argument("--encoder-pipeline-k", type=int, default=0,
                       help="also time the whole pipeline with this many concepts (0 = off) for every model and "
                            "encoder runtime, all interleaved frame by frame in one loop (presence and identity "
                            "off, decoder in the default runtime, auto)")


def _scene(count: int, size: tuple[int, int], seed: int):
    """A synthetic scene of ``count`` frames (at least 2), the same for every model and runtime."""
    from perovss_ros.sim.scenes import make_scene

    width, height = size
    return make_scene(seed=seed, num_frames=max(2, count), size=(width, height), num_objects=3, num_lookalikes=2)


def pipelines(torch_encoder, ort_encoder, scene, k: int, threads: int, seed: int) -> dict[str, object]:
    """``{"torch": Pipeline, "onnxruntime": Pipeline}``: K concepts, the encoder in that runtime.

    PerSAM's computation as the scaling benchmark runs it (presence and identity off); the
    decoder runs in the default runtime (``auto``), held to ``threads``. Concepts are taught
    once through the torch encoder (same weights) and shared.
    """
    from perovss_ros.bench.core_scaling import MemoEncoder, decoder_runtime, taught_pipeline
    from perovss_ros.core.sam import SamMaskDecoder

    runtime = decoder_runtime("auto", "cpu")
    decoder = SamMaskDecoder(torch_encoder.sam, runtime=runtime, threads=threads)
    config = {"backend": "sam", "presence": False, "identity": False, "concept_store": None, "seed": seed,
              "runtime": runtime}
    memo = MemoEncoder(torch_encoder)
    out = {}
    for name, encoder in (("torch", torch_encoder), ("onnxruntime", ort_encoder)):
        pipe = taught_pipeline(config, memo, decoder, scene, k, scene.teach_frames[:1])
        pipe.encoder = encoder
        out[name] = pipe
    return out


def encoder_pair(model: str, seed: int, threads: int):
    """(torch ``SamImageEncoder``, onnxruntime ``SamImageEncoder``, weights text) on one ``Sam``, CPU.

    The onnxruntime encoder comes from the graph cache (exported and checked against
    PyTorch the first time) with ``threads`` intra-op threads.
    """
    from perovss_ros.core.sam import SamImageEncoder, build_sam_backend
    from perovss_ros.core.sam.graph_cache import cached_encoder

    random_weights, weights = weight_source(model)
    encoder, _ = build_sam_backend({"model": model, "seed": seed, "runtime": "torch", "device": "cpu"},
                                   random_weights=random_weights)
    graph = cached_encoder(encoder.sam, encoder.model_id, threads=threads)
    return encoder, SamImageEncoder(encoder.sam, encoder.model_id, graph), weights


def compare(torch_encoder, ort_encoder, frames: list[np.ndarray], warmup: int, count: int
            ) -> dict[str, object]:
    """Encode ``warmup + count`` frames with both, alternating which goes first; medians and ratio.

    Returns ``{"torch_ms", "onnxruntime_ms", "speedup", "max_abs_diff", "torch_times_ms",
    "onnxruntime_times_ms"}`` (``speedup`` = torch / onnxruntime; the diff over every frame).
    """
    runners = {"torch": torch_encoder, "onnxruntime": ort_encoder}
    times: dict[str, list[float]] = {name: [] for name in runners}
    diff = 0.0
    for i in range(warmup + count):
        frame = frames[i % len(frames)]
        order = list(runners) if i % 2 == 0 else list(reversed(runners))
        grids = {}
        for name in order:
            tick = time.perf_counter()
            grids[name] = runners[name].encode(frame).grid
            elapsed = time.perf_counter() - tick
            if i >= warmup:
                times[name].append(elapsed)
        diff = max(diff, float((grids["torch"] - grids["onnxruntime"]).abs().max()))
    torch_ms = 1000 * statistics.median(times["torch"])
    ort_ms = 1000 * statistics.median(times["onnxruntime"])
    return {"torch_ms": torch_ms, "onnxruntime_ms": ort_ms, "speedup": torch_ms / ort_ms, "max_abs_diff": diff,
            "torch_times_ms": [1000 * t for t in times["torch"]],
            "onnxruntime_times_ms": [1000 * t for t in times["onnxruntime"]]}


def run_encoders(args: argparse.Namespace) -> dict:
    """Measure every ``--encoder-models`` model; print one table. Returns ``{"threads", "size", "models": {...}}``."""
    models = [m.strip() for m in str(args.encoder_models).split(",") if m.strip()]
    width, height = (int(v) for v in str(args.encoder_size).lower().split("x"))
    before = torch.get_num_threads()
    if args.encoder_threads > 0:
        torch.set_num_threads(args.encoder_threads)
    threads = torch.get_num_threads()
    k = max(0, int(getattr(args, "encoder_pipeline_k", 0) or 0))
    results: dict = {"threads": threads, "size": [width, height], "models": {}}
    steps: dict[str, object] = {}
    try:
        for model in models:
            count = args.encoder_frames if args.encoder_frames is not None else _FRAMES.get(model, 3)
            warmup = args.encoder_warmup if args.encoder_warmup is not None else _WARMUP.get(model, 1)
            scene = _scene(count, (width, height), args.encoder_seed)
            torch_encoder, ort_encoder, weights = encoder_pair(model, args.encoder_seed, threads)
            row = compare(torch_encoder, ort_encoder, list(scene.frames), warmup, count)
            row.update(frames=count, warmup=warmup, weights=weights,
                       img_size=int(torch_encoder.img_size))
            results["models"][model] = row
            print(f"{model}: torch {row['torch_ms']:.1f} ms, onnxruntime {row['onnxruntime_ms']:.1f} ms, "
                  f"{row['speedup']:.2f}x", flush=True)
            if k:
                for runtime, pipe in pipelines(torch_encoder, ort_encoder, scene, k, threads,
                                               args.encoder_seed).items():
                    steps[f"{model}/{runtime}"] = lambda frame, pipe=pipe: pipe.process(frame)
            del torch_encoder, ort_encoder
        if k:
            results["pipeline"] = _pipeline_rows(steps, models, k, width, height, args)
    finally:
        torch.set_num_threads(before)
    _print_table(results)
    return results


def _pipeline_rows(steps: dict[str, object], models: list[str], k: int, width: int, height: int,
                   args: argparse.Namespace) -> dict:
    """Every model's pipeline in both encoder runtimes, round-robin on the same frames: median ms per frame."""
    from perovss_ros.bench.core_scaling import _interleaved, decoder_runtime

    count = args.encoder_frames if args.encoder_frames is not None else min(_FRAMES.get(m, 3) for m in models)
    warmup = args.encoder_warmup if args.encoder_warmup is not None else min(_WARMUP.get(m, 1) for m in models)
    scene = _scene(count, (width, height), args.encoder_seed)
    times = _interleaved(steps, list(scene.frames), warmup, count)
    return {"k": k, "frames": count, "warmup": warmup, "decoder_runtime": decoder_runtime("auto", "cpu"),
            "median_ms": {name: 1000 * statistics.median(values) for name, values in times.items()}}


def _print_table(results: dict) -> None:
    width, height = results["size"]
    print(f"\nimage encoder per frame, cpu, {results['threads']} threads (torch and onnxruntime alike), "
          f"{width}x{height} frames, medians; same frames, runtimes alternating")
    print(f"{'model':>7} {'input':>9} {'frames':>6} {'torch ms':>9} {'ort ms':>9} {'speedup':>8} {'max|diff|':>10}"
          f"  weights")
    for model, row in results["models"].items():
        size = f"{row['img_size']}x{row['img_size']}"
        print(f"{model:>7} {size:>9} {row['frames']:>6} {row['torch_ms']:>9.1f} {row['onnxruntime_ms']:>9.1f} "
              f"{row['speedup']:>7.2f}x {row['max_abs_diff']:>10.2e}  {row['weights']}")
    print(f"target: onnxruntime >= {TARGET_SPEEDUP}x torch per frame for vit_b and mobile")
    pipeline = results.get("pipeline")
    if not pipeline:
        return
    print(f"\npipeline per frame, K={pipeline['k']} (presence and identity off, decoder {pipeline['decoder_runtime']}),"
          f" every model and encoder runtime in turn on the same frames, median of {pipeline['frames']} "
          f"after {pipeline['warmup']} warm-up")
    medians = pipeline["median_ms"]
    for name, ms in medians.items():
        print(f"{name:>20} {ms:>10.1f} ms")
    for runtime in ("torch", "onnxruntime"):
        if f"mobile/{runtime}" in medians and f"vit_b/{runtime}" in medians:
            ratio = medians[f"vit_b/{runtime}"] / medians[f"mobile/{runtime}"]
            print(f"vit_b / mobile, encoder {runtime}: {ratio:.2f}x (target: mobile >= 10x faster)")


def main(argv: list[str] | None = None) -> int:
    """``python -m perovss_ros.bench.core_encoders``."""
    parser = argparse.ArgumentParser(description=HELP)
    add_arguments(parser)
    run_encoders(parser.parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
