"""``perovss export``: write ONNX graphs of SAM image encoders and the PerSAM-guided decoder, each checked.

For every model given, the image encoder (fixed input size) and the guided
decoder (dynamic prompt sets and points, PerSAM's guidance inputs) are
exported, run in onnxruntime against PyTorch (max |diff| printed; above
``--atol`` the command fails), and the matching ``trtexec`` line is printed.
"""

from __future__ import annotations

import argparse
import sys

HELP = "export SAM encoders and the guided decoder to ONNX, check them in onnxruntime, print trtexec shapes"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--model`` (one or more, or ``all``), ``--output-dir``, ``--parts``, weights and shape options."""
    parser.add_argument("--model", nargs="+", default=["vit_b"],
                        help="SAM models to export (tiny, mobile, vit_b, vit_l, vit_h) or 'all' (default vit_b)")
    parser.add_argument("--output-dir", required=True, help="directory the .onnx files are written to")
    parser.add_argument("--parts", nargs="+", default=["encoder", "decoder"], choices=["encoder", "decoder"],
                        help="graphs to write (default both)")
    parser.add_argument("--checkpoint", default="",
                        help="checkpoint file or directory ('' = $PEROVSS_MODEL_DIR or ~/.cache/perovss/models)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the tiny model's (and --random-weights') weights")
    parser.add_argument("--random-weights", action="store_true",
                        help="seeded random weights instead of the checkpoint (for benchmarks; file names say so)")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    parser.add_argument("--atol", type=float, default=1e-4,
                        help="largest ONNX-vs-PyTorch difference accepted (default 1e-4)")
    parser.add_argument("--max-sets", type=int, default=8, help="largest K (prompt sets) in the trtexec profile")
    parser.add_argument("--max-points", type=int, default=8, help="most points per set in the trtexec profile")


def run(args: argparse.Namespace) -> int:
    """0 when every graph was written and checked; 1 on a checkpoint or check failure; 2 for bad arguments."""
    from perovss_ros.core.errors import CheckpointError, InvalidInputError
    from perovss_ros.core.sam.export import export_model
    from perovss_ros.core.sam.registry import SAM_MODELS

    models = list(SAM_MODELS) if args.model == ["all"] else args.model
    for model in models:
        try:
            graphs = export_model(model, args.output_dir, checkpoint=args.checkpoint, seed=args.seed,
                                  random_weights=args.random_weights, parts=args.parts, opset=args.opset,
                                  atol=args.atol, max_sets=args.max_sets, max_points=args.max_points)
        except (InvalidInputError, CheckpointError) as exc:
            print(f"perovss export: {model}: {exc}", file=sys.stderr)
            return 2 if isinstance(exc, InvalidInputError) else 1
        for graph in graphs:
            print(f"{model} {graph.part}: wrote {graph.path}; onnxruntime vs PyTorch max |diff| "
                  f"{graph.max_abs_diff:.1e} (limit {args.atol:.0e})")
            print(f"    TensorRT: {graph.trtexec_command()}")
    return 0
