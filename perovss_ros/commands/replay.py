"""``perovss replay BAG``: publish a bag's image topic with rclpy (no ROS tools needed)."""

from __future__ import annotations

import argparse
import sys

HELP = "publish a bag's image topic (rosbags + rclpy): real time, --rate, --fast, --loop, --remap"
ACCEPTS_EXTRA = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """BAG, --topic, --remap, --rate/--fast, --loop, --wait."""
    parser.add_argument("bag", help="bag directory (sqlite3 or mcap)")
    parser.add_argument("--topic", action="append", default=[], metavar="T",
                        help="topic to publish (repeatable; default: the bag's image topics)")
    parser.add_argument("--remap", action="append", default=[], metavar="T:=T2",
                        help="publish topic T as T2 (repeatable)")
    speed = parser.add_mutually_exclusive_group()
    speed.add_argument("--rate", type=float, default=1.0, help="playback speed factor (default 1.0)")
    speed.add_argument("--fast", action="store_true", help="publish as fast as possible")
    parser.add_argument("--loop", action="store_true", help="start again at the end, until Ctrl-C")
    parser.add_argument("--wait", type=float, default=5.0, metavar="S",
                        help="seconds to wait for a subscriber before publishing (default 5)")


def run(args: argparse.Namespace) -> int:
    """0 when the bag was published, 1 on a bad bag/topic."""
    import rclpy

    from perovss_ros.core.errors import InvalidInputError
    from perovss_ros.ros.bags import parse_remaps, replay
    from perovss_ros.ros.cli_args import RosArgumentsError, command_node

    try:
        with command_node("replay", args.extra) as node:
            sent = replay(node, args.bag, topics=args.topic or None, remap=parse_remaps(args.remap),
                          rate=args.rate, fast=args.fast, loop=args.loop, wait_subscribers=args.wait,
                          should_stop=lambda: not rclpy.ok())
    except RosArgumentsError as exc:
        print(f"perovss replay: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # the normal end of --loop
        print(f"replay of {args.bag} interrupted")
        return 0
    except (InvalidInputError, OSError) as exc:
        print(f"perovss replay: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        if type(exc).__module__.startswith("rosbags"):  # unreadable bag: say so, no traceback
            print(f"perovss replay: cannot read {args.bag}: {exc}", file=sys.stderr)
            return 1
        raise
    print(f"published {sent} message(s) from {args.bag}")
    return 0
