"""The ~/teach service: request → pipeline.teach arguments, live capture, response.

Teaching runs in the service thread; the core computes the concept outside its lock
and swaps it in atomically, so the stream keeps running and never sees a half-made
concept.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from perovss_interfaces.srv import Teach

from perovss_ros.core.errors import InvalidInputError
from perovss_ros.core.types import BoxXYXY
from perovss_ros.ros.image_conversion import image_to_mask, image_to_rgb
from perovss_ros.ros.messages import concept_to_msg, roi_to_box


@dataclass
class TeachArgs:
    """What ``Pipeline.teach`` needs, converted from a request (images H×W×3 uint8 RGB, masks H×W bool)."""

    images: list[np.ndarray]
    masks: list[np.ndarray] | None = None
    boxes: list[BoxXYXY] | None = None
    category: str = ""


def request_boxes(request: Teach.Request) -> list[BoxXYXY]:
    """The request's RegionOfInterest boxes as XYXY; an empty box is an error."""
    boxes = []
    for i, roi in enumerate(request.boxes):
        if roi.width == 0 or roi.height == 0:
            raise InvalidInputError(
                f"box {i} is empty ({roi.width}×{roi.height}); give a box around the object")
        boxes.append(roi_to_box(roi))
    return boxes


def check_request_shape(request: Teach.Request, max_shots: int) -> None:
    """Reject malformed requests before any conversion or capture (counts, missing prompts)."""
    n_img, n_mask, n_box = len(request.images), len(request.masks), len(request.boxes)
    if n_img == 0:
        if request.num_frames == 0:
            raise InvalidInputError("give images (with masks or boxes), or num_frames >= 1 and one box to "
                                    "capture from the live topic")
        if request.num_frames > max_shots:
            raise InvalidInputError(f"num_frames {request.num_frames} is over the limit of {max_shots} "
                                    "(parameter max_shots); capture fewer frames")
        if n_mask:
            raise InvalidInputError(
                "masks cannot be given for captured frames; give one box on the first frame")
        if n_box != 1:
            raise InvalidInputError(
                f"live capture needs exactly one box (on the first captured frame), got {n_box}")
        return
    if n_img > max_shots:
        raise InvalidInputError(
            f"too many images ({n_img}); at most {max_shots} (parameter max_shots) per request")
    if n_mask and n_box:
        raise InvalidInputError("give masks or boxes, not both")
    if n_mask == 0 and n_box == 0:
        raise InvalidInputError(
            "give one mask per image, or boxes (one per image, or one for the first image)")
    if n_mask and n_mask != n_img:
        raise InvalidInputError(f"got {n_mask} masks for {n_img} images; give exactly one mask per image")
    if n_box and n_box not in (1, n_img):
        raise InvalidInputError(f"got {n_box} boxes for {n_img} images; give one box per image or one box")


def request_to_args(request: Teach.Request, max_pixels: int) -> TeachArgs:
    """Convert the images, masks and boxes of a request that carries images."""
    images = []
    for i, msg in enumerate(request.images):
        try:
            images.append(image_to_rgb(msg, max_pixels))
        except InvalidInputError as exc:
            raise InvalidInputError(f"image {i}: {exc}") from None
    masks = None
    if request.masks:
        masks = []
        for i, msg in enumerate(request.masks):
            try:
                mask = image_to_mask(msg, max_pixels)
            except InvalidInputError as exc:
                raise InvalidInputError(f"mask {i}: {exc}") from None
            if mask.shape != images[i].shape[:2]:
                raise InvalidInputError(
                    f"mask {i} is {mask.shape[1]}×{mask.shape[0]} but image {i} is "
                    f"{images[i].shape[1]}×{images[i].shape[0]}; masks must match their images"
                )
            masks.append(mask)
    boxes = request_boxes(request) if request.boxes else None
    return TeachArgs(images=images, masks=masks, boxes=boxes, category=request.category)


@dataclass
class FrameCapture:
    """Collects ``count`` converted frames offered by the image callback (H×W×3 uint8 RGB)."""

    count: int
    convert: Callable[[object], np.ndarray]
    frames: list[np.ndarray] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)

    def offer(self, msg: object) -> None:
        """Take ``msg`` if more frames are needed (conversion errors are kept for the response)."""
        if self.done.is_set():
            return
        try:
            self.frames.append(np.array(self.convert(msg), copy=True))
        except InvalidInputError as exc:
            self.errors.append(str(exc))
            return
        if len(self.frames) >= self.count:
            self.done.set()


def success_response(name: str, result, action: str) -> Teach.Response:
    """Response for a successful teach (``result`` is a core TeachResult)."""
    info = result.concept
    kind = {"given": f"category '{info.category}'", "kept": f"category '{info.category}' (kept)",
            "inferred": f"category '{info.category}' (inferred from the shots)"}.get(
        result.category_source, "no category (give one, or turn labelling on to infer it)")
    return Teach.Response(
        success=True,
        message=f"{action} '{name}': {info.num_shots} shot(s), {kind}, re-finds its own references with "
        f"IoU {result.self_iou:.2f}",
        concept=concept_to_msg(info),
        self_iou=float(result.self_iou),
    )
