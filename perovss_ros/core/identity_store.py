"""A concept's identity model as plain numbers for the concept store: a JSON block and npz arrays.

No pickle: every array is numeric, and the parts that may be missing (a reference view's outline
or palette) are stored as zero rows with a flag per row. ``identity_arrays`` writes, and
``read_identity`` checks and rebuilds the model (ValueError saying what is wrong).

JSON block (``concept.json`` ``"identity"``)::

    threshold, fg_low, bg_high   the model's calibration (floats)
    bias                         the head's bias
    cues                         null (no region check) or {"accept": float, "references": R, "negatives": N}
                                 (N: 0 when absent, as in stores written before negatives were kept)

npz arrays (the cue ones only when ``cues`` is not null)::

    identity_head          C float32        the head's weight (C: the concept's feature size)
    identity_colour        R×Dc float32     per reference view its colour histogram
    identity_pattern       R×Dp float32     its pattern vector
    identity_outline       R×Do float32     its outline signature (zeros where it has none)
    identity_has_outline   R uint8          1 where the view has an outline
    identity_cut           R uint8          1 where the view's mask touches the image border
    identity_palette       R×B×B×T float32  its palette (zeros where it has none)
    identity_has_palette   R uint8          1 where the view has a palette
    identity_negative_*    N rows           the same seven arrays for the negatives (``CueCheck.negatives``:
                                            look-alikes decoded in the teach frames); absent when N is 0
    identity_cue_scale     3 float64        per cue the distance of one unit
    identity_cue_weights   3 float64        per cue its weight
    identity_rival_shapes  N×2 int64        per rival silhouette its height and width (N may be 0)
    identity_rival_pixels  Σh·w uint8       the rival silhouettes' pixels (0/1), row by row, one after another

The region check's ``silhouettes`` and ``views`` are not stored: they are the shots' masks and images
cropped, rebuilt from the stored shots (``shots``).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping

import numpy as np
import torch

from perovss_ros.core.appearance import CUES, CueCheck, RegionDescriptor, describe_region, shot_views
from perovss_ros.core.identity import IdentityHead, IdentityModel
from perovss_ros.core.illuminant import shots_light

# The npz arrays of the look-alikes seen at teach time (``CueCheck.negatives``) start with this.
NEGATIVE_PREFIX = "identity_negative"

# The fields this module writes and reads. A field added to one of these classes must be stored
# here too (and IDENTITY_FIT_VERSION bumped); until it is, ``identity_arrays`` refuses the model.
STORED_FIELDS: dict[type, frozenset[str]] = {
    IdentityModel: frozenset({"head", "threshold", "fg_low", "bg_high", "cues"}),
    IdentityHead: frozenset({"weight", "bias"}),
    # ``silhouettes``, ``views`` and ``light`` come from the shots: not stored, rebuilt from the stored shots.
    CueCheck: frozenset({"references", "scale", "accept", "weights", "silhouettes", "views", "rivals", "light",
                         "negatives"}),
    RegionDescriptor: frozenset({"colour", "pattern", "outline", "cut", "palette"}),
}


def unstored_fields() -> list[str]:
    """``Class.field`` names of the identity model's parts that this module does not store."""
    return [f"{cls.__name__}.{f.name}" for cls, known in STORED_FIELDS.items()
            for f in dataclasses.fields(cls) if f.name not in known]


def identity_arrays(model: IdentityModel) -> tuple[dict[str, object], dict[str, np.ndarray]]:
    """The JSON block and the npz arrays (names prefixed ``identity_``) of ``model``.

    ValueError when the model has parts this module does not store (``unstored_fields``): storing
    it without them would load another model.
    """
    missing = unstored_fields()
    if missing:
        raise ValueError(f"the concept store does not store {', '.join(missing)} (core/identity_store.py)")
    block: dict[str, object] = {
        "threshold": float(model.threshold), "fg_low": float(model.fg_low), "bg_high": float(model.bg_high),
        "bias": float(model.head.bias), "cues": None,
    }
    arrays = {"identity_head": model.head.weight.detach().cpu().numpy().astype(np.float32)}
    cues = model.cues
    if cues is not None:
        block["cues"] = {"accept": float(cues.accept), "references": len(cues.references),
                         "negatives": len(cues.negatives)}
        arrays.update(_descriptor_arrays("identity", cues.references))
        arrays.update(_descriptor_arrays(NEGATIVE_PREFIX, cues.negatives))
        arrays.update({
            "identity_cue_scale": np.asarray(cues.scale, np.float64),
            "identity_cue_weights": np.asarray(cues.weights, np.float64),
            "identity_rival_shapes": np.asarray([r.shape for r in cues.rivals], np.int64).reshape(-1, 2),
            "identity_rival_pixels": np.concatenate([np.asarray(r, np.uint8).ravel() for r in cues.rivals]
                                                    or [np.zeros(0, np.uint8)]),
        })
    return block, arrays


def read_identity(block: object, data: Mapping[str, np.ndarray], channels: int,
                  shots: list[tuple[np.ndarray, np.ndarray]] | None = None) -> IdentityModel:
    """The identity model of a JSON ``block`` and the npz ``data`` (``identity_arrays``' layout).

    ``channels``: the concept's feature size, which the head must have; ``shots``: the concept's
    ``(H×W×3 uint8 RGB image, H×W bool mask)`` shots, which the region check places over border-cut
    masks (``appearance.shot_views``; None: none).
    ValueError when anything is missing, of the wrong shape or type, or not finite, and when a
    reference's cues have other sizes than this code's (``describe_region``).
    """
    if not isinstance(block, dict):
        raise ValueError("the identity block is not an object")
    threshold, fg_low, bg_high, bias = (_number(block, key) for key in ("threshold", "fg_low", "bg_high", "bias"))
    weight = _array(data, "identity_head", np.float32, (channels,))
    if "cues" not in block:
        raise ValueError("the identity block has no 'cues'")
    cues = None if block["cues"] is None else _read_cues(block["cues"], data, shots or [])
    return IdentityModel(head=IdentityHead(weight=torch.from_numpy(weight), bias=bias), threshold=threshold,
                         fg_low=fg_low, bg_high=bg_high, cues=cues)


def _read_cues(block: object, data: Mapping[str, np.ndarray], shots: list[tuple[np.ndarray, np.ndarray]]
               ) -> CueCheck:
    if not isinstance(block, dict):
        raise ValueError("the identity's 'cues' is not an object")
    count = block.get("references")
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise ValueError(f"the identity's cues name {count!r} references")
    accept = _number(block, "accept")
    # A store written before negatives were kept has none: the region check then works as it did.
    negatives = block.get("negatives", 0)
    if not isinstance(negatives, int) or isinstance(negatives, bool) or negatives < 0:
        raise ValueError(f"the identity's cues name {negatives!r} negatives")
    references = _read_descriptors(data, "identity", count)
    scale = _array(data, "identity_cue_scale", np.float64, (len(CUES),))
    if not (scale > 0).all():
        raise ValueError("identity_cue_scale is not positive")
    weights = _array(data, "identity_cue_weights", np.float64, (len(CUES),))
    silhouettes, views = shot_views([image for image, _ in shots], [mask for _, mask in shots])
    light = shots_light([image for image, _ in shots]) if shots else None
    return CueCheck(references=references, scale=scale, accept=accept, weights=weights, silhouettes=silhouettes,
                    views=views, rivals=_read_rivals(data), light=light,
                    negatives=_read_descriptors(data, NEGATIVE_PREFIX, negatives) if negatives else ())


def _descriptor_arrays(prefix: str, descs: tuple[RegionDescriptor, ...]) -> dict[str, np.ndarray]:
    """The npz arrays ``{prefix}_colour`` ... ``{prefix}_has_palette`` of region descriptors (none: no arrays)."""
    if not descs:
        return {}
    outline, has_outline = _rows([d.outline for d in descs])
    palette, has_palette = _rows([d.palette for d in descs])
    return {
        f"{prefix}_colour": np.stack([np.asarray(d.colour, np.float32) for d in descs]),
        f"{prefix}_pattern": np.stack([np.asarray(d.pattern, np.float32) for d in descs]),
        f"{prefix}_outline": outline,
        f"{prefix}_has_outline": has_outline,
        f"{prefix}_cut": np.asarray([bool(d.cut) for d in descs], np.uint8),
        f"{prefix}_palette": palette,
        f"{prefix}_has_palette": has_palette,
    }


def _read_descriptors(data: Mapping[str, np.ndarray], prefix: str, count: int) -> tuple[RegionDescriptor, ...]:
    """``count`` region descriptors from the ``_descriptor_arrays`` of ``prefix``, checked against the sizes
    this code describes a region with (``_descriptor_shapes``)."""
    colour_shape, pattern_shape, outline_shape, palette_shape = _descriptor_shapes()
    colour = _array(data, f"{prefix}_colour", np.float32, (count, *colour_shape))
    pattern = _array(data, f"{prefix}_pattern", np.float32, (count, *pattern_shape))
    has_outline = _flags(data, f"{prefix}_has_outline", count)
    has_palette = _flags(data, f"{prefix}_has_palette", count)
    cut = _flags(data, f"{prefix}_cut", count)
    # Without any row present the array is only a placeholder: its row size is not checked.
    outline = _array(data, f"{prefix}_outline", np.float32,
                     (count, *outline_shape) if has_outline.any() else (count, None))
    palette = _array(data, f"{prefix}_palette", np.float32,
                     (count, *palette_shape) if has_palette.any() else (count, None))
    return tuple(
        RegionDescriptor(colour=colour[i], pattern=pattern[i], outline=outline[i] if has_outline[i] else None,
                         cut=bool(cut[i]), palette=palette[i] if has_palette[i] else None)
        for i in range(count))


def _read_rivals(data: Mapping[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    """The rival silhouettes (``h×w bool`` each) of ``identity_rival_shapes`` / ``identity_rival_pixels``."""
    shapes = _array(data, "identity_rival_shapes", np.int64, (None, 2))
    pixels = _array(data, "identity_rival_pixels", np.uint8, (None,))
    if (shapes < 1).any() or int(np.prod(shapes, axis=1).sum()) != pixels.size:
        raise ValueError("identity_rival_shapes do not match identity_rival_pixels")
    if not np.isin(pixels, (0, 1)).all():
        raise ValueError("identity_rival_pixels holds values other than 0 and 1")
    if shapes.shape[0] == 0:
        return ()
    ends = np.cumsum(np.prod(shapes, axis=1))
    return tuple(part.reshape(int(h), int(w)).astype(bool)
                 for part, (h, w) in zip(np.split(pixels, ends[:-1]), shapes, strict=True))


def _rows(values: list[np.ndarray | None]) -> tuple[np.ndarray, np.ndarray]:
    """Optional same-shape float32 arrays -> one stacked array (zeros for the missing; ``R×0`` when all
    are missing) and a uint8 flag per row."""
    present = [v for v in values if v is not None]
    flags = np.asarray([v is not None for v in values], np.uint8)
    if not present:
        return np.zeros((len(values), 0), np.float32), flags
    shape = np.shape(present[0])
    return np.stack([np.asarray(v, np.float32) if v is not None else np.zeros(shape, np.float32)
                     for v in values]), flags


def _number(block: dict, key: str) -> float:
    value = block.get(key)
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise ValueError(f"the identity's {key!r} is {value!r}, not a finite number")
    return float(value)


def _array(data: Mapping[str, np.ndarray], key: str, dtype: type, shape: tuple[int | None, ...]) -> np.ndarray:
    """``data[key]`` as ``dtype``, checked to be numeric, finite and of ``shape`` (None: any size)."""
    if key not in data:
        raise ValueError(f"{key} is missing")
    array = np.asarray(data[key])
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{key} holds {array.dtype}, not numbers")
    if array.ndim != len(shape) or any(want is not None and got != want
                                       for got, want in zip(array.shape, shape, strict=True)):
        wanted = "×".join("*" if s is None else str(s) for s in shape)
        raise ValueError(f"{key} has shape {array.shape}, not {wanted}")
    array = array.astype(dtype)
    if not np.isfinite(array).all():
        raise ValueError(f"{key} is not finite")
    return array


def _flags(data: Mapping[str, np.ndarray], key: str, count: int) -> np.ndarray:
    flags = _array(data, key, np.uint8, (count,))
    if not np.isin(flags, (0, 1)).all():
        raise ValueError(f"{key} holds values other than 0 and 1")
    return flags.astype(bool)


@functools.lru_cache(maxsize=1)
def _descriptor_shapes() -> tuple[tuple[int | None, ...], ...]:
    """Shapes of the colour, pattern, outline and palette this code describes a region with (from a
    small striped square; ``(None,)`` for a part it did not describe, which is then not checked)."""
    yy, xx = np.mgrid[:48, :48]
    mask = (np.abs(yy - 24) < 16) & (np.abs(xx - 24) < 16)
    rgb = np.full((48, 48, 3), 60, np.uint8)
    rgb[mask & (xx // 4 % 2 == 0)] = (200, 40, 40)
    rgb[mask & (xx // 4 % 2 == 1)] = (240, 220, 200)
    desc = describe_region(rgb, mask)
    parts = (None, None, None, None) if desc is None else (desc.colour, desc.pattern, desc.outline, desc.palette)
    return tuple((None,) if p is None else tuple(np.shape(p)) for p in parts)
