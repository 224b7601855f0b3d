"""``perovss record BAG TOPIC...``: write live topics to a new bag (rosbags) that ``ros2 bag play`` plays."""

from __future__ import annotations

import argparse
import sys

HELP = "record topics into a new bag with rosbags (Ctrl-C, --duration or --count stops)"
ACCEPTS_EXTRA = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """BAG, TOPIC..., --duration, --count, --wait."""
    parser.add_argument("bag", help="bag directory to create (must not exist)")
    parser.add_argument("topics", nargs="+", metavar="TOPIC", help="topics to record")
    parser.add_argument("--duration", type=float, default=0.0, metavar="S", help="stop after S seconds")
    parser.add_argument("--count", type=int, default=0, metavar="N", help="stop after N messages")
    parser.add_argument("--wait", type=float, default=10.0, metavar="S",
                        help="seconds to wait for the topics to appear (default 10)")


def run(args: argparse.Namespace) -> int:
    """0 when the bag was written, 1 when a topic never appeared or the bag exists."""
    import time

    import rclpy
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

    from perovss_ros.core.errors import InvalidInputError
    from perovss_ros.ros.bags import BagRecorder, wait_topic_types
    from perovss_ros.ros.cli_args import RosArgumentsError, command_node

    recorder = None
    try:
        with command_node("record", args.extra) as node:
            executor = SingleThreadedExecutor()
            executor.add_node(node)
            try:
                topics = [t if t.startswith("/") else f"{node.get_namespace().rstrip('/')}/{t}"
                          for t in args.topics]
                recorder = BagRecorder(node, args.bag, wait_topic_types(node, topics, args.wait))
                print(f"recording {', '.join(topics)} into {args.bag}", flush=True)
                end = time.monotonic() + args.duration if args.duration > 0 else None
                while rclpy.ok():
                    executor.spin_once(timeout_sec=0.1)
                    if end is not None and time.monotonic() >= end:
                        break
                    if args.count and recorder.count >= args.count:
                        break
            finally:
                if recorder is not None:
                    recorder.close()
                    print(f"wrote {recorder.count} message(s) to {args.bag}", flush=True)
                executor.shutdown()
    except RosArgumentsError as exc:
        print(f"perovss record: {exc}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except InvalidInputError as exc:
        print(f"perovss record: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        if type(exc).__module__.startswith("rosbags"):  # e.g. the bag exists already
            print(f"perovss record: {exc}", file=sys.stderr)
            return 1
        raise
    return 0
