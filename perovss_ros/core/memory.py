"""Concept memory on disk: one folder per concept, JSON + npz + PNG shots, atomic, no pickle.

Layout of ``<store>/<name>/``::

    concept.json            metadata (category word included; older stores without one load as "");
                            names the arrays and shot files of this version; with an identity
                            model also its scalars ("identity") and how it was fitted
                            ("identity_fit": fit version, model id, turns)
    arrays-<token>.npz      targets S×C, embedding C, local features (concatenated) + counts,
                            optional PerSAM-F scale weights [3], optional identity model
                            (head, region-check references as numeric arrays with a flag per
                            missing outline or palette: ``core/identity_store.py``)
                            (np.load allow_pickle=False)
    shot-<token>-<i>.png    reference image i (RGB stored as PNG)
    mask-<token>-<i>.png    reference mask i (0/255)

A concept.json without an identity block (older stores, or a concept taught with ``identity``
off) loads with ``identity=None``. A stored identity model that cannot be used (missing keys,
wrong shapes, not finite, a head that does not fit the feature size) is dropped with a logged
warning, and the concept loads with ``identity=None`` but its fit record kept; the pipeline fits
it again from the shots (``Pipeline.load_store``).

Every file is written to a temporary name, fsynced and renamed; ``concept.json`` is written
last and only then are the previous version's files removed, so a crash at any point leaves
either the previous or the new version complete.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import torch

from perovss_ros.core.concept import Concept, Shot, validate_name
from perovss_ros.core.errors import ConceptStoreError
from perovss_ros.core.identity import IdentityFit, IdentityModel
from perovss_ros.core.identity_store import identity_arrays, read_identity

FORMAT_VERSION = 1
META_FILE = "concept.json"
log = logging.getLogger(__name__)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file in the same folder, fsync, rename)."""
    tmp = path.with_name(f".tmp-{uuid.uuid4().hex}-{path.name}")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _png(image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise ConceptStoreError("could not encode a shot as PNG")
    return buf.tobytes()


class ConceptMemory:
    """Reads and writes concepts under ``directory`` (created on first write)."""

    def __init__(self, directory: str | os.PathLike) -> None:
        self.directory = Path(directory).expanduser()

    def folder(self, name: str) -> Path:
        """Folder of concept ``name`` (validated, so it cannot leave the store)."""
        return self.directory / validate_name(name)

    def names(self) -> list[str]:
        """Names of the stored concepts (folders holding a concept.json), sorted."""
        if not self.directory.is_dir():
            return []
        return sorted(
            p.name for p in self.directory.iterdir()
            if p.is_dir() and not p.name.startswith(".") and (p / META_FILE).is_file()
        )

    def save(self, concept: Concept) -> None:
        """Write ``concept`` (new version of its folder), atomically."""
        folder = self.folder(concept.name)
        token = uuid.uuid4().hex[:12]
        try:
            folder.mkdir(parents=True, exist_ok=True)
            shots = []
            for i, shot in enumerate(concept.shots):
                image_file, mask_file = f"shot-{token}-{i}.png", f"mask-{token}-{i}.png"
                atomic_write_bytes(folder / image_file, _png(cv2.cvtColor(shot.image, cv2.COLOR_RGB2BGR)))
                atomic_write_bytes(folder / mask_file, _png(shot.mask.astype(np.uint8) * 255))
                shots.append({"image": image_file, "mask": mask_file})
            identity_block, identity_npz = self._identity_arrays(concept)
            arrays_file = f"arrays-{token}.npz"
            atomic_write_bytes(folder / arrays_file, _npz_bytes(concept, identity_npz))
            meta = {
                "format": FORMAT_VERSION,
                "name": concept.name,
                "instance_id": concept.instance_id,
                "model_id": concept.model_id,
                "created": concept.created,
                "presence_threshold": concept.presence_threshold,
                "calibration": concept.calibration,
                "fine_tuned": concept.scale_weights is not None,
                "category": concept.category,
                "arrays": arrays_file,
                "shots": shots,
            }
            if identity_block is not None:
                meta["identity"] = identity_block
                if concept.identity_fit is not None:
                    meta["identity_fit"] = concept.identity_fit.to_json()
            atomic_write_bytes(folder / META_FILE, json.dumps(meta, indent=1).encode("utf-8"))
        except OSError as exc:
            raise ConceptStoreError(f"cannot write concept {concept.name!r} to {folder}: {exc}") from exc
        self._remove_unreferenced(folder, {arrays_file, META_FILE, *(f for s in shots for f in s.values())})

    def delete(self, name: str) -> None:
        """Remove the folder of ``name`` (renamed away first, so a crash never leaves half a concept)."""
        folder = self.folder(name)
        if not folder.exists():
            return
        trash = self.directory / f".deleted-{name}-{uuid.uuid4().hex[:8]}"
        try:
            os.replace(folder, trash)
        except OSError as exc:
            raise ConceptStoreError(f"cannot delete concept {name!r} from {self.directory}: {exc}") from exc
        shutil.rmtree(trash, ignore_errors=True)

    def load(self, name: str) -> Concept:
        """Read concept ``name``; ConceptStoreError when it is missing or malformed."""
        folder = self.folder(name)
        try:
            meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
            if meta.get("format") != FORMAT_VERSION or meta.get("name") != name:
                raise ConceptStoreError(f"{folder / META_FILE} has an unknown format or another name")
            shots = [self._read_shot(folder, s["image"], s["mask"]) for s in meta["shots"]]
            arrays_path = folder / _plain_file(meta["arrays"])
            with np.load(arrays_path, allow_pickle=False) as data:
                targets = torch.from_numpy(data["targets"].astype(np.float32))
                embedding = torch.from_numpy(data["embedding"].astype(np.float32))
                counts = data["local_counts"].astype(np.int64).tolist()
                local = list(torch.from_numpy(data["local"].astype(np.float32)).split(counts))
                weights = None
                if "scale_weights" in data:
                    weights = torch.from_numpy(data["scale_weights"].astype(np.float32))
                if targets.ndim != 2 or len(shots) == 0 or targets.shape[0] != len(shots) or len(local) != len(shots):
                    raise ConceptStoreError(f"concept {name!r} in {folder} is inconsistent (shots vs arrays)")
                identity, fit = self._read_identity(name, folder, meta, data, int(targets.shape[1]),
                                                    [(s.image, s.mask) for s in shots])
        except ConceptStoreError:
            raise
        except (OSError, EOFError, ValueError, KeyError, TypeError, json.JSONDecodeError, zipfile.BadZipFile) as exc:
            raise ConceptStoreError(f"concept {name!r} in {folder} cannot be read: {exc}") from exc
        return Concept(
            name=name,
            instance_id=int(meta["instance_id"]),
            model_id=str(meta["model_id"]),
            created=float(meta["created"]),
            shots=shots,
            local=local,
            targets=targets,
            embedding=embedding,
            presence_threshold=float(meta["presence_threshold"]),
            scale_weights=weights,
            calibration={k: float(v) for k, v in meta.get("calibration", {}).items()},
            category=str(meta.get("category", "")),  # stores written before categories have none
            identity=identity,
            identity_fit=fit,
        )

    def load_all(self) -> Iterator[tuple[str, Concept | ConceptStoreError]]:
        """Every stored concept, or the error that stopped reading it (the caller decides)."""
        for name in self.names():
            try:
                yield name, self.load(name)
            except ConceptStoreError as exc:
                yield name, exc

    @staticmethod
    def _identity_arrays(concept: Concept) -> tuple[dict[str, object] | None, dict[str, np.ndarray]]:
        """The identity model's JSON block and arrays; (None, {}) without one, or (logged) when it has
        parts the store cannot write: the concept is then saved without it and refitted when loaded."""
        if concept.identity is None:
            return None, {}
        try:
            return identity_arrays(concept.identity)
        except ValueError as exc:
            log.warning("concept %r is saved without its identity model: %s", concept.name, exc)
            return None, {}

    @staticmethod
    def _read_identity(name: str, folder: Path, meta: dict, data: np.lib.npyio.NpzFile, channels: int,
                       shots: list[tuple[np.ndarray, np.ndarray]]
                       ) -> tuple[IdentityModel | None, IdentityFit | None]:
        """The stored identity model and its fit record, each None when absent or unusable (logged)."""
        fit = identity = None
        if meta.get("identity_fit") is not None:
            try:
                fit = IdentityFit.from_json(meta["identity_fit"])
            except ValueError as exc:
                log.warning("concept %r in %s: %s; its identity model will be fitted again", name, folder, exc)
        if "identity" in meta:
            try:
                identity = read_identity(meta["identity"], data, channels, shots)
            except (OSError, EOFError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as exc:
                log.warning("concept %r in %s: its stored identity model cannot be used (%s); it will be "
                            "fitted again", name, folder, exc)
        return identity, fit

    @staticmethod
    def _read_shot(folder: Path, image_file: str, mask_file: str) -> Shot:
        image = cv2.imread(str(folder / _plain_file(image_file)), cv2.IMREAD_COLOR)
        mask = cv2.imread(str(folder / _plain_file(mask_file)), cv2.IMREAD_GRAYSCALE)
        if image is None or mask is None or image.shape[:2] != mask.shape:
            raise ConceptStoreError(f"shot {image_file} / {mask_file} in {folder} is missing or corrupt")
        return Shot(image=cv2.cvtColor(image, cv2.COLOR_BGR2RGB), mask=mask > 127)

    @staticmethod
    def _remove_unreferenced(folder: Path, keep: set[str]) -> None:
        for path in folder.iterdir():
            if path.name not in keep and path.is_file():
                with contextlib.suppress(OSError):
                    path.unlink()


def _plain_file(name: str) -> str:
    """A file name from concept.json, refused if it could point outside the concept folder."""
    if not isinstance(name, str) or name != os.path.basename(name) or name in ("", ".", ".."):
        raise ConceptStoreError(f"concept.json names an invalid file {name!r}")
    return name


def _npz_bytes(concept: Concept, extra: dict[str, np.ndarray]) -> bytes:
    """The npz of the concept's arrays and ``extra`` ones (its identity model's)."""
    import io

    arrays = {
        "targets": concept.targets.numpy().astype(np.float32),
        "embedding": concept.embedding.numpy().astype(np.float32),
        "local": torch.cat(concept.local).numpy().astype(np.float32),
        "local_counts": np.asarray([len(x) for x in concept.local], np.int64),
    }
    if concept.scale_weights is not None:
        arrays["scale_weights"] = concept.scale_weights.detach().numpy().astype(np.float32)
    arrays.update(extra)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()
