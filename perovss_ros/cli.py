"""perovss: find, segment and follow personal objects in ROS 2 camera streams.

The ``perovss`` command has one subcommand per module in ``perovss_ros.commands``.

Each command module defines ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args) -> int``, and imports heavy dependencies (torch, rclpy) inside
``run`` so that ``perovss --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS: dict[str, str] = {
    "doctor": "perovss_ros.commands.doctor",
    "node": "perovss_ros.commands.node",
    "teach": "perovss_ros.commands.teach",
    "forget": "perovss_ros.commands.forget",
    "concepts": "perovss_ros.commands.concepts",
    "find": "perovss_ros.commands.find",
    "replay": "perovss_ros.commands.replay",
    "record": "perovss_ros.commands.record",
    "sim": "perovss_ros.commands.sim",
    "eval": "perovss_ros.commands.eval",
    "demo": "perovss_ros.commands.demo",
    "models": "perovss_ros.commands.models",
    "bench": "perovss_ros.commands.bench",
}


def add_module_commands(sub: argparse._SubParsersAction, modules: dict[str, str]) -> dict[str, object]:
    """Add one subparser per importable module of ``modules`` (name -> module path).

    A module that is not part of this build is left out; a module that fails to
    import for another reason raises, so a broken command is never hidden.
    """
    loaded: dict[str, object] = {}
    for name, module_name in modules.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        loaded[name] = module
        cmd = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(cmd)
        cmd.set_defaults(command_module=module)
    return loaded


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every available command."""
    parser = argparse.ArgumentParser(prog="perovss", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_module_commands(sub, COMMANDS)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``perovss`` console script."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    module = args.command_module
    if extra and not getattr(module, "ACCEPTS_EXTRA", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.extra = extra
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
