"""``perovss engines build|list|clear``: the TensorRT engine cache of the sam backend's ``runtime: tensorrt``.

``build`` exports each model's encoder and guided decoder, builds both engines
through TensorRT's Python API (fp16 or fp32, K from 1 to ``--max-sets``, a timing
cache) and stores them with their sidecars; it needs TensorRT and a CUDA device
and says so otherwise. ``list`` and ``clear`` need neither.
"""

from __future__ import annotations

import argparse
import sys

HELP = "TensorRT engines for runtime tensorrt: build (needs TensorRT + CUDA), list, clear"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``build`` (``--model``, ``--precision``, weights and shape options), ``list``, ``clear``; ``--engine-dir``."""
    parser.add_argument("action", choices=("build", "list", "clear"))
    parser.add_argument("--engine-dir", default=None,
                        help="engine cache directory (default $PEROVSS_ENGINE_DIR or ~/.cache/perovss/engines)")
    parser.add_argument("--model", nargs="+", default=["mobile"],
                        help="build: SAM models (tiny, mobile, vit_b, vit_l, vit_h; default mobile)")
    parser.add_argument("--precision", choices=("fp16", "fp32"), default="fp16", help="build: default fp16")
    parser.add_argument("--checkpoint", default="",
                        help="build: checkpoint file or directory ('' = $PEROVSS_MODEL_DIR or ~/.cache/perovss/models)")
    parser.add_argument("--seed", type=int, default=0, help="build: seed of tiny's (and --random-weights') weights")
    parser.add_argument("--random-weights", action="store_true",
                        help="build: seeded random weights instead of the checkpoint (benchmarks; ids say so)")
    parser.add_argument("--max-sets", type=int, default=8, help="build: largest K (prompt sets) of the decoder")
    parser.add_argument("--max-points", type=int, default=8, help="build: most points per prompt set")


def _build(args: argparse.Namespace) -> int:
    from perovss_ros.core.errors import CheckpointError, InvalidInputError
    from perovss_ros.core.sam.backend import build_sam_backend
    from perovss_ros.core.sam.tensorrt_engines import engine_bytes, tensorrt_problem

    problem = tensorrt_problem()
    if problem is not None:
        print(f"perovss engines build: {problem}; engines can only be built on the machine that runs them "
              "(TensorRT and a CUDA GPU)", file=sys.stderr)
        return 1
    for model in args.model:
        try:
            encoder, _ = build_sam_backend({"model": model, "checkpoint": args.checkpoint, "seed": args.seed,
                                            "device": "cuda"}, random_weights=args.random_weights)
            for part in ("encoder", "decoder"):
                _, key = engine_bytes(encoder.sam, model, encoder.model_id, part, args.precision, args.engine_dir,
                                      args.max_sets, args.max_points, rebuild=True)
                print(f"{model} {part}: built {key.file_name()} (TensorRT {key.tensorrt_version}, "
                      f"compute capability {key.compute_capability}, {key.precision})")
        except (InvalidInputError, CheckpointError) as exc:
            print(f"perovss engines build: {model}: {exc}", file=sys.stderr)
            return 2 if isinstance(exc, InvalidInputError) else 1
    return 0


def _list(args: argparse.Namespace) -> int:
    from perovss_ros.core.sam.engine_cache import default_engine_dir, list_engines

    folder = args.engine_dir or default_engine_dir()
    found = list_engines(args.engine_dir)
    if not found:
        print(f"no TensorRT engines in {folder} (build them with `perovss engines build --model MODEL`)")
        return 0
    for path, record in found:
        if record is None:
            print(f"{path.name}: no readable sidecar (rebuild it)")
            continue
        print(f"{path.name}: {record.get('model_id')} {record.get('part')} {record.get('precision')}, TensorRT "
              f"{record.get('tensorrt_version')}, compute capability {record.get('compute_capability')}, "
              f"{record.get('engine_bytes', 0) / 2**20:.1f} MiB")
    return 0


def run(args: argparse.Namespace) -> int:
    """0 on success; 1 when TensorRT/CUDA is missing or a build fails; 2 for bad arguments."""
    if args.action == "build":
        return _build(args)
    if args.action == "list":
        return _list(args)
    from perovss_ros.core.sam.engine_cache import clear_engines, default_engine_dir

    removed = clear_engines(args.engine_dir)
    print(f"removed {removed} file(s) from {args.engine_dir or default_engine_dir()}")
    return 0
