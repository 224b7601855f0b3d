"""``perovss demo``: see perovss work end to end, through the real node (what ``make demo`` runs)."""

from __future__ import annotations

import argparse

#: See perovss_ros.ros.client: this short-lived process exits without rclpy teardown.
EXIT_WITHOUT_TEARDOWN = True
HELP = ("generate a scene bag, start the node, teach my_mug over ~/teach from 3 frames with one box, "
        "replay the bag through the node, write overlays, metrics and a report to demo_out/")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``perovss demo``."""
    parser.add_argument("--out", default="demo_out", help="output directory (default: demo_out)")
    parser.add_argument("--quick", action="store_true", help="a short, small scene (for tests and smoke checks)")
    parser.add_argument("--seed", type=int, default=7, help="scene seed (default: 7)")
    parser.add_argument("--frames", type=int, default=None, help="frames in the scene (default 60; quick 12)")
    parser.add_argument("--width", type=int, default=None, help="image width (default 640; quick 320)")
    parser.add_argument("--height", type=int, default=None, help="image height (default 480; quick 240)")
    parser.add_argument("--lookalikes", type=int, default=3, help="look-alike distractors (default: 3)")
    parser.add_argument("--backend", default="auto", choices=["auto", "classic", "sam"],
                        help="auto: SAM when its checkpoint is present, else classic")
    parser.add_argument("--model", default="vit_b", help="SAM model when the sam backend runs (default: vit_b)")
    parser.add_argument("--labels", action="store_true",
                        help="also name everything else with open-vocabulary labels (synthetic-clip, built once "
                             "when missing; my_mug taught with category mug); the GIF shows every segment")


def run(args: argparse.Namespace) -> int:
    """Run the demo; 0 when every step worked (the numbers are reported, not judged)."""
    from perovss_ros.ros.demo import DemoOptions, run_demo

    options = DemoOptions(
        out=args.out,
        seed=args.seed,
        frames=args.frames or (12 if args.quick else 60),
        size=(args.width or (320 if args.quick else 640), args.height or (240 if args.quick else 480)),
        lookalikes=args.lookalikes,
        backend=args.backend,
        model=args.model,
        gif=True,
        labels=args.labels,
    )
    return run_demo(options)
