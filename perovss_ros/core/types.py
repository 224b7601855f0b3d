"""Value types shared by every part of the perception core.

Conventions used throughout ``perovss_ros.core``:

* Images are ``H×W×3 uint8 RGB`` numpy arrays (C-contiguous).
* Masks are ``H×W bool`` numpy arrays at image resolution.
* Boxes are ``(x0, y0, x1, y1)`` in pixels, XYXY, inclusive-exclusive
  (``x1``/``y1`` are one past the last column/row).
* Points are ``(x, y)`` in pixels of the original image.
* Feature maps are ``C×h×w`` float32 torch tensors (L2 normalisation is done by
  the matcher, not the encoder).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

BoxXYXY = tuple[float, float, float, float]


@dataclass
class Features:
    """Dense features of one image plus the geometry to map between image and grid.

    ``grid`` is ``C×h×w`` float32. The encoder resized the image by ``scale``
    (longest side to its input size) and padded bottom/right, so image pixel
    ``(x, y)`` lands at input pixel ``(x*scale, y*scale)`` and grid cell
    ``(x*scale/stride, y*scale/stride)``. ``valid_hw`` is the part of the grid
    covered by the (unpadded) image.
    """

    grid: torch.Tensor
    image_hw: tuple[int, int]
    scale: float
    stride: float
    valid_hw: tuple[int, int]
    extra: dict = field(default_factory=dict)

    @property
    def grid_hw(self) -> tuple[int, int]:
        """``(h, w)`` of the feature grid."""
        return int(self.grid.shape[-2]), int(self.grid.shape[-1])


@dataclass
class Prompts:
    """Prompts for one decode, in image pixels.

    ``points`` is ``N×2`` float32 ``(x, y)``, ``labels`` is ``N`` int
    (1 positive, 0 negative). ``box`` is XYXY or None. ``mask_logits`` is the
    backend's low-resolution logits from a previous decode (``1×h'×w'``) or None.
    ``region`` is ``h×w bool`` on the feature grid: the cells the object may occupy
    (negative evidence: a touching look-alike lies outside it), or None. Decoders that
    grow masks on the grid (classic) stay inside it; others rely on the negative points.
    """

    points: np.ndarray
    labels: np.ndarray
    box: BoxXYXY | None = None
    mask_logits: torch.Tensor | None = None
    multimask: bool = False
    region: np.ndarray | None = None


@dataclass
class Guidance:
    """PerSAM's decoder guidance for one prompt set.

    ``attention_bias`` is the target-guided attention bias, ``h×w`` float32 on
    the feature grid (sigmoid of the standardised confidence map).
    ``target_embedding`` is the un-normalised mean target feature, ``C``.
    Backends that cannot use guidance (``MaskDecoder.supports_guidance`` false)
    ignore it.
    """

    attention_bias: torch.Tensor | None = None
    target_embedding: torch.Tensor | None = None


@dataclass
class DecodeOutput:
    """Result of decoding K prompt sets.

    ``masks`` is ``K×M×H×W`` bool at image size (M = 1, or 3 for multimask),
    ``scores`` ``K×M`` float32 (predicted IoU or backend quality),
    ``logits`` ``K×M×h'×w'`` low-resolution logits (backend-specific) or None.
    """

    masks: np.ndarray
    scores: np.ndarray
    logits: torch.Tensor | None = None


@dataclass
class Segment:
    """One object found in a frame.

    ``label``: concept name (personal) or open-vocabulary label.
    ``instance_id``: value of this segment's pixels in ``FrameResult.instance_mask``;
    stable per concept across frames (generic segments: per tracked region, ids above
    the personal range, ``core/scene_segments.py``). ``score`` in [0, 1]. ``box_xyxy`` in pixels.
    ``category``: the vocabulary word of what it is (a personal concept's category, a generic
    segment's label), ``""`` when unknown.
    """

    label: str
    instance_id: int
    score: float
    box_xyxy: BoxXYXY
    personal: bool = True
    category: str = ""


@dataclass
class FrameResult:
    """Everything the pipeline found in one frame.

    ``instance_mask`` is ``H×W uint16``: 0 nothing, else a ``Segment.instance_id``.
    ``timings`` maps stage name to seconds. ``presence`` maps every known concept
    name to its presence score for this frame (also for absent concepts).
    """

    instance_mask: np.ndarray
    segments: list[Segment]
    timings: dict[str, float] = field(default_factory=dict)
    presence: dict[str, float] = field(default_factory=dict)


@dataclass
class ConceptInfo:
    """Public summary of a taught concept (what ``Pipeline.concepts()`` returns)."""

    name: str
    num_shots: int
    fine_tuned: bool
    model: str
    created: float
    presence_threshold: float
    instance_id: int
    category: str = ""


@dataclass
class TeachResult:
    """What ``Pipeline.teach`` returns: the concept and how well it re-finds its own shots.

    ``category``: the concept's category word (``""``: none); ``category_source`` says where it
    came from: ``given`` (the teach call), ``inferred`` (zero-shot from the shots), ``kept`` (the
    concept's earlier category) or ``none`` (labelling off, or no vocabulary word fits the shots).
    """

    concept: ConceptInfo
    self_iou: float
    category: str = ""
    category_source: str = "none"
