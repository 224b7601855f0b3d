"""On-disk cache of TensorRT engines, checked before TensorRT ever sees a file (no TensorRT import here).

An engine only runs on the TensorRT version and GPU that built it, for the graph,
precision and shapes it was built from. Those fields make the :class:`EngineKey`;
its digest is in the file name, and a JSON sidecar next to each engine records the
fields and the engine file's SHA-256. Before deserialising, :func:`load_engine`
checks the sidecar against the key wanted here and the file against its hash, so
an engine built for another TensorRT or GPU, or a truncated or corrupt file, is a
CheckpointError naming ``perovss engines build``, never a crash inside TensorRT.

Directory: ``$PEROVSS_ENGINE_DIR`` or ``~/.cache/perovss/engines``. Files:
``<model id>.<part>.<precision>.<digest>.engine`` and the same name ending ``.json``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from perovss_ros.core.errors import CheckpointError, InvalidInputError

ENGINE_DIR_ENV = "PEROVSS_ENGINE_DIR"
ENGINE_SUFFIX = ".engine"
SIDECAR_SUFFIX = ".json"
TIMING_SUFFIX = ".timing"
GRAPH_SUFFIX = ".trt.onnx"
"""The ONNX graphs engines are built from, kept beside them so the key's SHA-256 is cheap to compute."""
PRECISIONS = ("fp16", "fp32")
PARTS = ("encoder", "decoder")
KEY_FIELDS = ("model", "model_id", "part", "onnx_sha256", "tensorrt_version", "compute_capability", "precision",
              "shapes")
"""The fields an engine's validity depends on; the sidecar records each."""


def default_engine_dir() -> Path:
    """``$PEROVSS_ENGINE_DIR`` or ``~/.cache/perovss/engines``."""
    env = os.environ.get(ENGINE_DIR_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "perovss" / "engines"


@dataclass(frozen=True)
class EngineKey:
    """What one engine was built from and for.

    ``model`` the registry name (``mobile``), ``model_id`` the weights' id
    (``sam-mobile-6dbb9052``), ``part`` ``encoder``/``decoder``, ``onnx_sha256`` of
    the graph it was built from, ``tensorrt_version`` (``10.3.0``),
    ``compute_capability`` of the GPU (``8.7``), ``precision`` ``fp16``/``fp32``,
    ``shapes`` the optimisation profile (``ShapeProfile.as_dict()``).
    """

    model: str
    model_id: str
    part: str
    onnx_sha256: str
    tensorrt_version: str
    compute_capability: str
    precision: str
    shapes: dict[str, list[list[int]]] = field(hash=False)

    def __post_init__(self) -> None:
        if self.part not in PARTS:
            raise InvalidInputError(f"engine part {self.part!r} unknown; use one of: {', '.join(PARTS)}")
        if self.precision not in PRECISIONS:
            raise InvalidInputError(f"precision {self.precision!r} unknown; use one of: {', '.join(PRECISIONS)}")

    def fields(self) -> dict:
        """The key as a JSON-ready dict (``KEY_FIELDS``)."""
        return asdict(self)

    def digest(self) -> str:
        """16 hex digits of SHA-256 over the key fields as sorted, compact JSON."""
        text = json.dumps(self.fields(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def stem(self) -> str:
        """``<model id>.<part>.<precision>``: what engines of one slot share, whatever they were built for."""
        return f"{self.model_id}.{self.part}.{self.precision}"

    def file_name(self) -> str:
        """``<stem>.<digest>.engine``."""
        return f"{self.stem()}.{self.digest()}{ENGINE_SUFFIX}"

    def rebuild_command(self) -> str:
        """The command that builds this engine again."""
        extra = " --random-weights" if "-random-" in self.model_id else ""
        return f"perovss engines build --model {self.model} --precision {self.precision}{extra}"


def _sidecar(engine: Path) -> Path:
    return engine.with_suffix(SIDECAR_SUFFIX)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def _read_sidecar(engine: Path) -> dict | None:
    try:
        record = json.loads(_sidecar(engine).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _differences(record: dict, key: EngineKey) -> list[str]:
    """``field: found (here: wanted)`` for every key field where ``record`` differs from ``key``."""
    wanted = key.fields()
    return [f"{name} {record.get(name)!r} (here: {wanted[name]!r})" for name in KEY_FIELDS
            if record.get(name) != wanted[name]]


def write_engine(key: EngineKey, engine: bytes, directory: str | os.PathLike | None = None) -> Path:
    """Store ``engine`` (serialized) for ``key`` with its sidecar; engines of the same slot built for
    another key are removed. Returns the engine's path."""
    folder = Path(directory).expanduser() if directory else default_engine_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / key.file_name()
    for old in folder.glob(f"{key.stem()}.*{ENGINE_SUFFIX}"):
        if old != path:
            old.unlink(missing_ok=True)
            _sidecar(old).unlink(missing_ok=True)
    _atomic_write(path, engine)
    record = {**key.fields(), "digest": key.digest(), "engine_sha256": _sha256(engine), "engine_bytes": len(engine)}
    _atomic_write(_sidecar(path), json.dumps(record, indent=1, sort_keys=True).encode())
    return path


def load_engine(key: EngineKey, directory: str | os.PathLike | None = None) -> bytes | None:
    """The serialized engine for ``key``, checked; None when this slot has no engine at all.

    Raises CheckpointError naming :meth:`EngineKey.rebuild_command` when the slot
    holds an engine built for another key (another TensorRT version, GPU, graph,
    precision or shapes: the message lists which), when the engine has no readable
    sidecar, or when its bytes do not match the SHA-256 the sidecar recorded.
    """
    folder = Path(directory).expanduser() if directory else default_engine_dir()
    path = folder / key.file_name()
    rebuild = f"rebuild it with `{key.rebuild_command()}`"
    if not path.is_file():
        for other in sorted(folder.glob(f"{key.stem()}.*{ENGINE_SUFFIX}")):
            record = _read_sidecar(other)
            found = "; ".join(_differences(record, key)) if record else "no readable sidecar"
            raise CheckpointError(f"TensorRT engine {other} was built for another setup ({found}); {rebuild}")
        return None
    record = _read_sidecar(path)
    if record is None:
        raise CheckpointError(f"TensorRT engine {path} has no readable sidecar {_sidecar(path).name}; {rebuild}")
    differences = _differences(record, key)
    if differences:
        raise CheckpointError(f"TensorRT engine {path} was built for another setup ({'; '.join(differences)}); "
                              f"{rebuild}")
    engine = path.read_bytes()
    if _sha256(engine) != record.get("engine_sha256"):
        raise CheckpointError(f"TensorRT engine {path} is corrupt ({len(engine)} bytes, SHA-256 differs from its "
                              f"sidecar's); {rebuild}")
    return engine


def list_engines(directory: str | os.PathLike | None = None) -> list[tuple[Path, dict | None]]:
    """Every engine file in the cache with its sidecar record (None when unreadable), by name."""
    folder = Path(directory).expanduser() if directory else default_engine_dir()
    return [(path, _read_sidecar(path)) for path in sorted(folder.glob(f"*{ENGINE_SUFFIX}"))]


def clear_engines(directory: str | os.PathLike | None = None) -> int:
    """Delete the cache's engines, their sidecars, timing caches and graphs; returns the files removed.

    Only names this module writes are removed (``*.fp16.*.engine``/``.json``,
    ``*.timing``, ``*.trt.onnx``), so pointing ``$PEROVSS_ENGINE_DIR`` at a shared
    directory cannot delete anything else.
    """
    folder = Path(directory).expanduser() if directory else default_engine_dir()
    patterns = [f"*.{p}.*{s}" for p in PRECISIONS for s in (ENGINE_SUFFIX, SIDECAR_SUFFIX)]
    removed = 0
    for pattern in (*patterns, f"timing-*{TIMING_SUFFIX}", f"*{GRAPH_SUFFIX}"):
        for path in folder.glob(pattern):
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def timing_cache_path(tensorrt_version: str, compute_capability: str, directory: str | os.PathLike | None = None
                      ) -> Path:
    """Where the builder's timing cache for this TensorRT and GPU lives (``timing-trt10.3.0-sm8.7.timing``)."""
    folder = Path(directory).expanduser() if directory else default_engine_dir()
    return folder / f"timing-trt{tensorrt_version}-sm{compute_capability}{TIMING_SUFFIX}"
