"""``perovss models``: list, download and verify the model checkpoints perovss knows.

Downloads go to a temporary file beside the target, are checked against the
catalogue's SHA-256 and only then renamed into place, so the model directory
never holds a partial or corrupt checkpoint under its real name. Offline, the
download fails within ``--timeout`` seconds and says how to place the file by
hand.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from pathlib import Path

from perovss_ros.commands.build_synthetic_clip import add_build_parser, run_build

HELP = "list, download (with checksum) and verify model checkpoints (SAM mobile, vit_b/l/h, CLIP); build synthetic-clip"

DEFAULT_TIMEOUT_S = 10.0
_CHUNK = 1 << 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``list`` (default), ``download NAME``, ``verify``; ``--dir`` for all."""
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    lst = sub.add_parser("list", help="the catalogue and which files are present (default action)")
    down = sub.add_parser("download", help="fetch a checkpoint, verify its SHA-256, store it where perovss looks")
    down.add_argument("name", help="catalogue name, e.g. sam_vit_b (see `perovss models list`)")
    down.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S,
                      help=f"seconds to wait for the server to answer or send data (default {DEFAULT_TIMEOUT_S:g})")
    down.add_argument("--force", action="store_true", help="download even if a verified copy is present")
    ver = sub.add_parser("verify", help="check the SHA-256 of every present checkpoint")
    build = add_build_parser(sub)
    for p in (parser, lst, down, ver, build):
        p.add_argument("--dir", default=argparse.SUPPRESS if p is not parser else None,
                       help="model directory (default: $PEROVSS_MODEL_DIR or ~/.cache/perovss/models)")


def _model_dir(args: argparse.Namespace) -> Path:
    from perovss_ros.core.checkpoints import default_model_dir

    return Path(args.dir).expanduser() if getattr(args, "dir", None) else default_model_dir()


def _size(num: int | None) -> str:
    if num is None:
        return "?"
    value = float(num)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


def manual_placement_hint(ckpt, target: Path) -> str:
    """How to place a checkpoint by hand: where it goes and the checksum it must have."""
    return (f"To install it by hand, fetch {ckpt.url} on a machine with network access, copy the file to "
            f"{target} and check that `sha256sum {target}` prints {ckpt.sha256} "
            f"(then `perovss models verify`).")


def download(name: str, directory: Path, timeout: float = DEFAULT_TIMEOUT_S, force: bool = False,
             progress: bool = True) -> Path:
    """Download catalogue checkpoint ``name`` into ``directory``; returns the verified file's path.

    Raises InvalidInputError for an unknown name, CheckpointError when the
    server cannot be reached (within ``timeout``) or the checksum does not
    match. Nothing is left under the target name unless it verified.
    """
    import http.client
    import urllib.error
    import urllib.request

    from tqdm import tqdm

    from perovss_ros.core import checkpoints
    from perovss_ros.core.errors import CheckpointError, InvalidInputError

    ckpt = checkpoints.CHECKPOINTS.get(name)
    if ckpt is None:
        raise InvalidInputError(f"unknown checkpoint {name!r}; known: {', '.join(checkpoints.CHECKPOINTS)}")
    target = directory / ckpt.filename
    if target.is_file() and not force and checkpoints.sha256_of(target) == ckpt.sha256:
        return target
    directory.mkdir(parents=True, exist_ok=True)
    part = directory / f".{ckpt.filename}.{os.getpid()}.part"
    digest = hashlib.sha256()
    try:
        try:
            with urllib.request.urlopen(ckpt.url, timeout=timeout) as response, open(part, "wb") as out:
                total = int(response.headers.get("Content-Length") or 0) or ckpt.size_bytes
                with tqdm(total=total, unit="B", unit_scale=True, desc=ckpt.filename, disable=None if progress
                          else True, file=sys.stderr) as bar:
                    while chunk := response.read(_CHUNK):
                        out.write(chunk)
                        digest.update(chunk)
                        bar.update(len(chunk))
                out.flush()
                os.fsync(out.fileno())
        except (urllib.error.URLError, http.client.HTTPException, TimeoutError, ConnectionError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise CheckpointError(f"cannot download {name} from {ckpt.url}: {reason}. "
                                  f"{manual_placement_hint(ckpt, target)}") from exc
        got = digest.hexdigest()
        if got != ckpt.sha256:
            raise CheckpointError(f"downloaded {name} has SHA-256 {got}, expected {ckpt.sha256}; nothing was "
                                  f"stored. Try again. {manual_placement_hint(ckpt, target)}")
        os.replace(part, target)
        return target
    finally:
        part.unlink(missing_ok=True)


def _list(directory: Path) -> int:
    from perovss_ros.core import checkpoints

    print(f"model directory: {directory}")
    for ckpt in checkpoints.CHECKPOINTS.values():
        present = (directory / ckpt.filename).is_file()
        print(f"{ckpt.name:<16} {ckpt.family:<5} {ckpt.model:<9} {_size(ckpt.size_bytes):>9}  "
              f"{'present' if present else 'missing'}")
        print(f"    {ckpt.description}")
        print(f"    file {ckpt.filename}  sha256 {ckpt.sha256}")
        print(f"    url  {ckpt.url}")
    print("download one with: perovss models download NAME")
    return 0


def _verify(directory: Path) -> int:
    from perovss_ros.core import checkpoints

    present = bad = 0
    for ckpt in checkpoints.CHECKPOINTS.values():
        path = directory / ckpt.filename
        if not path.is_file():
            continue
        present += 1
        ok = checkpoints.sha256_of(path) == ckpt.sha256
        bad += not ok
        print(f"{ckpt.name:<16} {path}  {'OK' if ok else 'CHECKSUM MISMATCH: delete and download again'}")
    if present == 0:
        print(f"no checkpoints in {directory}; the classic backend will run (perovss models download NAME)")
    return 1 if bad else 0


def run(args: argparse.Namespace) -> int:
    """0 on success; 1 when a download failed or a present file does not verify; 2 for an unknown name."""
    from perovss_ros.core.errors import CheckpointError, InvalidInputError

    directory = _model_dir(args)
    action = args.action or "list"
    if action == "list":
        return _list(directory)
    if action == "verify":
        return _verify(directory)
    if action == "build":
        return run_build(args, directory)
    try:
        path = download(args.name, directory, timeout=args.timeout, force=args.force)
    except InvalidInputError as exc:
        print(f"perovss models: {exc}", file=sys.stderr)
        return 2
    except CheckpointError as exc:
        print(f"perovss models: {exc}", file=sys.stderr)
        return 1
    print(f"{args.name}: verified and stored at {path}")
    return 0
