"""`make venv` installs requirements.lock with --no-deps: the lock must hold what requirements.txt asks for.

A pin changed in requirements.txt without regenerating the lock (tools/lock_requirements.sh) would
otherwise install the old release silently.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]


def _pins(path: Path) -> dict[str, str]:
    """Canonical project name -> pinned version of every requirement line (comments and blanks skipped).
    Fails on a line that is not an exact ``name[extras]==version`` pin."""
    pins = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        requirement = Requirement(line)
        specs = list(requirement.specifier)
        assert len(specs) == 1 and specs[0].operator == "==" and requirement.marker is None, (
            f"{path.name}:{number}: not an exact pin: {line!r}")
        pins[canonicalize_name(requirement.name)] = specs[0].version
    return pins


@pytest.fixture(scope="module")
def lock() -> dict[str, str]:
    return _pins(ROOT / "requirements.lock")


def test_the_lock_pins_every_requirement_at_its_version(lock):
    wanted = _pins(ROOT / "requirements.txt")
    assert wanted, "requirements.txt lists nothing"
    missing = sorted(name for name in wanted if name not in lock)
    differ = sorted(f"{name}: {wanted[name]} wanted, {lock[name]} locked" for name in wanted
                    if name in lock and lock[name] != wanted[name])
    assert not missing and not differ, ("requirements.lock is stale, run tools/lock_requirements.sh: "
                                        f"missing {missing}, {differ}")


def test_the_lock_leaves_out_triton_and_keeps_what_torch_needs_to_import(lock):
    assert "triton" not in lock
    # torch's CUDA build links these at import time, on a machine without a GPU too.
    for name in ("torch", "torchvision", "nvidia-cudnn-cu13", "nvidia-nccl-cu13", "setuptools"):
        assert name in lock, name
