"""perovss: find, segment and follow personal objects in ROS 2 camera streams.

The ``perovss`` command has one subcommand per module in ``perovss_ros.commands``.

Each command module defines ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args) -> int``, and imports heavy dependencies (torch, rclpy) inside
``run`` so that ``perovss --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from perovss_ros.ros.transport import use_large_image_transport

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
    "export": "perovss_ros.commands.export",
    "engines": "perovss_ros.commands.engines",
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


def main(argv: list[str] | None = None, exit_process: bool = False) -> int:
    """Run one ``perovss`` command and return its exit code.

    ``exit_process`` (the console script) ends the process right away after a command
    that sets ``EXIT_WITHOUT_TEARDOWN`` (see perovss_ros.ros.client); called as a
    library function, main always returns.
    """
    use_large_image_transport()  # before any rclpy participant exists in this process
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
        code = int(module.run(args) or 0)
    except KeyboardInterrupt:
        code = 130
    if exit_process and getattr(module, "EXIT_WITHOUT_TEARDOWN", False):
        # Skip interpreter finalisation (and with it rclpy's teardown; see perovss_ros.ros.client).
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def console_main() -> None:
    """The ``perovss`` console script (and ``python -m perovss_ros.cli``)."""
    sys.exit(main(exit_process=True))


if __name__ == "__main__":
    console_main()
