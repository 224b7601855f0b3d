"""``perovss models build synthetic-clip``: train the small CLIP that knows only the synthetic world.

Called from ``perovss models`` (``commands/models.py``); kept apart so that the
models command stays about downloads.
"""

from __future__ import annotations

import argparse
import sys
import time

BUILDABLE = ("synthetic-clip",)


def add_build_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """The ``build`` action: ``perovss models build synthetic-clip [--force] [--seed N]``."""
    build = sub.add_parser("build", help="train a model that cannot be downloaded: synthetic-clip (a small CLIP "
                                         "that knows only the synthetic world, about 3 min on 2 CPU cores)")
    build.add_argument("name", choices=BUILDABLE, help="what to build")
    build.add_argument("--force", action="store_true", help="train again even if this recipe is cached")
    build.add_argument("--seed", type=int, default=None, help="training seed (default: the standard recipe's)")
    return build


def run_build(args: argparse.Namespace, directory) -> int:
    """Build (or find cached) the model of ``args.name`` in ``directory``; 0 on success."""
    import dataclasses

    import torch

    from perovss_ros.core.labels import synthetic_clip

    recipe = synthetic_clip.DEFAULT_RECIPE
    if args.seed is not None:
        recipe = dataclasses.replace(recipe, seed=args.seed)
    path = synthetic_clip.weights_path(recipe, directory)
    if path.is_file() and not args.force:
        print(f"{synthetic_clip.NAME}: cached at {path} (recipe {recipe.key()}); --force trains again")
        return 0
    started = time.monotonic()
    print(f"{synthetic_clip.DESCRIPTION}\ntraining {recipe.steps} steps of {recipe.batch_size} renders on "
          f"{torch.get_num_threads()} CPU threads ...", file=sys.stderr)

    def progress(step: int, loss: float) -> None:
        if (step + 1) % 25 == 0 or step + 1 == recipe.steps:
            print(f"  step {step + 1}/{recipe.steps}  loss {loss:.3f}  {time.monotonic() - started:.0f} s",
                  file=sys.stderr)

    path = synthetic_clip.build(recipe, directory, force=args.force, progress=progress)
    print(f"{synthetic_clip.NAME}: built in {time.monotonic() - started:.0f} s, stored at {path}")
    return 0
