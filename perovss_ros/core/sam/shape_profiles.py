"""TensorRT optimisation profiles (min/opt/max shape per input) of the exported SAM graphs.

One definition serves ``perovss export`` (the ``trtexec`` flags it prints) and the
engine builder (:mod:`perovss_ros.core.sam.tensorrt_engines`), so an engine built
either way accepts the same K (prompt sets) and points per set. Tensor names are
those of :mod:`perovss_ros.core.sam.graph_names`.
"""

from __future__ import annotations

from dataclasses import dataclass

from perovss_ros.core.errors import InvalidInputError
from perovss_ros.core.sam.graph_names import ENCODER_INPUT, GUIDANCE_INPUT_NAMES, INPUT_NAMES

Shape = tuple[int, ...]


@dataclass(frozen=True)
class ShapeProfile:
    """``tensors``: input name → (min, opt, max) shapes, in the graph's input order."""

    tensors: tuple[tuple[str, tuple[Shape, Shape, Shape]], ...]

    def as_dict(self) -> dict[str, list[list[int]]]:
        """``{name: [[min...], [opt...], [max...]]}``: JSON-ready, part of the engine cache key."""
        return {name: [list(s) for s in shapes] for name, shapes in self.tensors}

    def trtexec_flags(self) -> str:
        """``--minShapes=... --optShapes=... --maxShapes=...`` as ``trtexec`` takes them."""
        flags = []
        for which, flag in enumerate(("minShapes", "optShapes", "maxShapes")):
            parts = [f"{name}:{'x'.join(str(d) for d in shapes[which])}" for name, shapes in self.tensors]
            flags.append(f"--{flag}={','.join(parts)}")
        return " ".join(flags)


def encoder_profile(img_size: int) -> ShapeProfile:
    """The encoder's single fixed shape ``1×3×S×S`` (S = the model's input size)."""
    shape = (1, 3, int(img_size), int(img_size))
    return ShapeProfile(((ENCODER_INPUT, (shape, shape, shape)),))


def decoder_profile(grid_hw: tuple[int, int], embed_dim: int, max_sets: int = 8, max_points: int = 8,
                    guided: bool = True) -> ShapeProfile:
    """The decoder's profile: 1 set of 1 point, optimised for ``max_sets // 2`` sets of up to 4 points.

    ``grid_hw`` is the embedding grid (``h×w``), ``embed_dim`` its channels;
    InvalidInputError when ``max_sets`` or ``max_points`` is below 1.
    """
    if max_sets < 1 or max_points < 1:
        raise InvalidInputError(f"max_sets and max_points must be >= 1, got {max_sets} and {max_points}")
    grid_h, grid_w = (int(v) for v in grid_hw)

    def shapes(sets: int, points: int) -> dict[str, Shape]:
        return {
            "image_embeddings": (1, embed_dim, grid_h, grid_w), "point_coords": (sets, points, 2),
            "point_labels": (sets, points), "mask_input": (sets, 1, 4 * grid_h, 4 * grid_w),
            "has_mask_input": (sets,), "attention_bias": (sets, grid_h * grid_w), "bias_on": (sets,),
            "target_embedding": (sets, embed_dim),
        }

    low, opt, high = shapes(1, 1), shapes(max(1, max_sets // 2), min(4, max_points)), shapes(max_sets, max_points)
    names = INPUT_NAMES + GUIDANCE_INPUT_NAMES if guided else INPUT_NAMES
    return ShapeProfile(tuple((name, (low[name], opt[name], high[name])) for name in names))
