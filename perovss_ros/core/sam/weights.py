"""Finding, verifying and safely loading official SAM checkpoints.

Every failure becomes a :class:`CheckpointError` that names the file and the
``perovss models download NAME`` command, never a traceback from inside torch.
Loading never unpickles arbitrary objects (``torch.load(weights_only=True)``).

Hashing a 2.5 GB checkpoint takes many seconds, so a successful verification
is remembered in a sidecar stamp ``<file>.verified.json`` keyed on the file's
size and modification time; any change to the file invalidates it.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
from pathlib import Path

import torch

from perovss_ros.core.checkpoints import CHECKPOINTS, Checkpoint, default_model_dir, sha256_of
from perovss_ros.core.errors import CheckpointError

log = logging.getLogger(__name__)

STAMP_SUFFIX = ".verified.json"


def download_hint(ckpt: Checkpoint) -> str:
    """The command that fetches ``ckpt`` again."""
    return f"run `perovss models download {ckpt.name}`"


def resolve_checkpoint_path(ckpt: Checkpoint, checkpoint: str | os.PathLike | None) -> Path:
    """Where the file of ``ckpt`` is expected.

    ``checkpoint`` is the config value: empty/None = the default model directory,
    a directory = look for the catalogue file name in it, anything else = that file.
    """
    if not checkpoint:
        return default_model_dir() / ckpt.filename
    path = Path(checkpoint).expanduser()
    return path / ckpt.filename if path.is_dir() else path


def checkpoint_present(ckpt: Checkpoint, checkpoint: str | os.PathLike | None) -> bool:
    """Cheap check (no hashing): the file exists and, where the catalogue knows it, has the right size."""
    path = resolve_checkpoint_path(ckpt, checkpoint)
    try:
        size = path.stat().st_size
    except OSError:
        return False
    return path.is_file() and (ckpt.size_bytes is None or size == ckpt.size_bytes)


def _stamp_key(path: Path) -> dict:
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + STAMP_SUFFIX)


def _stamp_valid(path: Path, sha256: str) -> bool:
    try:
        stamp = json.loads(_stamp_path(path).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(stamp, dict) and stamp == {**_stamp_key(path), "sha256": sha256}


def _write_stamp(path: Path, sha256: str) -> None:
    stamp = _stamp_path(path)
    tmp = stamp.with_name(stamp.name + ".tmp")
    try:
        tmp.write_text(json.dumps({**_stamp_key(path), "sha256": sha256}))
        os.replace(tmp, stamp)
    except OSError as exc:  # read-only model dir: verification just repeats next time
        log.info("cannot cache checksum verification of %s: %s", path, exc)


def verify_checkpoint(path: Path, ckpt: Checkpoint) -> None:
    """Raise CheckpointError unless ``path`` exists and matches ``ckpt``'s size and SHA-256."""
    hint = download_hint(ckpt)
    if not path.is_file():
        raise CheckpointError(
            f"checkpoint file {path} for {ckpt.name} not found; {hint} "
            f"(or set the `checkpoint` parameter to the file, or $PEROVSS_MODEL_DIR to its directory)"
        )
    size = path.stat().st_size
    if ckpt.size_bytes is not None and size != ckpt.size_bytes:
        raise CheckpointError(
            f"checkpoint file {path} has {size} bytes, {ckpt.name} has {ckpt.size_bytes} "
            f"(partial or wrong download); {hint}"
        )
    if _stamp_valid(path, ckpt.sha256):
        return
    digest = sha256_of(path)
    if digest != ckpt.sha256:
        raise CheckpointError(
            f"checkpoint file {path} has SHA-256 {digest}, expected {ckpt.sha256} for {ckpt.name} "
            f"(corrupt or wrong file); {hint}"
        )
    _write_stamp(path, ckpt.sha256)


def load_weights(path: str | os.PathLike, hint: str = "") -> dict[str, torch.Tensor]:
    """Read a state dict of tensors from ``path`` without unpickling arbitrary objects.

    ``hint`` is appended to error messages (e.g. the download command).
    Raises CheckpointError when the file is unreadable, not a torch file, holds
    anything but a ``str -> Tensor`` mapping, or needs code to be executed.
    """
    suffix = f"; {hint}" if hint else ""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        # torch's own message suggests weights_only=False; that is exactly what we refuse to do.
        raise CheckpointError(
            f"checkpoint file {path} cannot be loaded safely: it is corrupt or holds pickled objects "
            f"other than tensors, which perovss never unpickles{suffix}"
        ) from None
    except Exception as exc:  # torch raises many types here (RuntimeError, EOFError, OSError...)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"checkpoint file {path} cannot be loaded safely ({type(exc).__name__}: {first}){suffix}"
        ) from None
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise CheckpointError(f"checkpoint file {path} is not a state dict of tensors{suffix}")
    return state


def load_state_into(module: torch.nn.Module, path: str | os.PathLike, hint: str = "") -> None:
    """Load the state dict at ``path`` into ``module`` (strict keys and shapes), as CheckpointError."""
    state = load_weights(path, hint)
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        suffix = f"; {hint}" if hint else ""
        detail = str(exc).strip().splitlines()[0]
        raise CheckpointError(
            f"checkpoint file {path} does not fit this model ({detail}){suffix}"
        ) from None


def load_official_weights(
    module: torch.nn.Module,
    checkpoint_name: str,
    checkpoint: str | os.PathLike | None,
    catalogue: dict[str, Checkpoint] | None = None,
) -> Path:
    """Find, verify and load catalogue checkpoint ``checkpoint_name`` into ``module``; returns its path."""
    ckpt = (catalogue or CHECKPOINTS)[checkpoint_name]
    path = resolve_checkpoint_path(ckpt, checkpoint)
    verify_checkpoint(path, ckpt)
    load_state_into(module, path, download_hint(ckpt))
    return path
