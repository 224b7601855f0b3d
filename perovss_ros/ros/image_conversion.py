"""Conversions between ``sensor_msgs`` images and numpy arrays, without needless copies.

Decoding is :mod:`perovss_ros.image_messages` (the project's one decoder, shared with the
bag readers): inputs are viewed in place (``np.frombuffer`` plus a strided view that
honours the row padding ``step``); a copy is made only where the colour order or
channel count must change, or where padding makes the view non-contiguous. Errors are
:class:`InvalidInputError` (a ``ValueError``) whose message names what to fix. This
module adds the node's restrictions (teaching masks, instance images) and the encoders.
"""

from __future__ import annotations

import array
import sys

import numpy as np
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from perovss_ros.core.errors import InvalidInputError
from perovss_ros.image_messages import (
    COMPRESSED_FORMATS,
    IMAGE_ENCODINGS,
    UnsupportedEncodingError,
    check_image_encoding,
    decode_image,
    decode_mask,
)

__all__ = [
    "COMPRESSED_FORMATS",
    "RGB_ENCODINGS",
    "UnsupportedEncodingError",
    "check_image_encoding",
    "compressed_to_rgb",
    "image_to_mask",
    "image_to_rgb",
    "instance_image_to_array",
    "mask_to_image",
    "rgb_to_image",
]

#: Encodings accepted for camera frames, with their channel count.
RGB_ENCODINGS = IMAGE_ENCODINGS
#: Encodings accepted for teaching masks (nonzero = object).
TEACH_MASK_ENCODINGS = ("mono8", "8UC1")
#: Encodings of instance images (pixel = instance id).
INSTANCE_ENCODINGS = ("16UC1", "mono16")


def image_to_rgb(msg: Image, max_pixels: int | None = None) -> np.ndarray:
    """Convert a ``sensor_msgs/Image`` to ``H×W×3 uint8 RGB``.

    rgb8 without padding is returned as a view of the message buffer (no copy);
    other encodings cost exactly one conversion copy. Raises
    :class:`UnsupportedEncodingError` for other encodings and
    :class:`InvalidInputError` for 0×0, oversize or truncated images.
    """
    return decode_image(msg, max_pixels)


def compressed_to_rgb(msg: CompressedImage, max_pixels: int | None = None) -> np.ndarray:
    """Decode a jpeg/png ``sensor_msgs/CompressedImage`` to ``H×W×3 uint8 RGB``."""
    return decode_image(msg, max_pixels)


def image_to_mask(msg: Image, max_pixels: int | None = None) -> np.ndarray:
    """Convert a mono8/8UC1 mask image to ``H×W bool`` (nonzero = object)."""
    if msg.encoding not in TEACH_MASK_ENCODINGS:
        raise UnsupportedEncodingError(msg.encoding, TEACH_MASK_ENCODINGS, "mask encoding")
    return decode_mask(msg, max_pixels) != 0


def _bytes_of(arr: np.ndarray) -> array.array:
    # array.array is the field's native type: assigning it avoids a per-element conversion.
    out = array.array("B")
    out.frombytes(np.ascontiguousarray(arr).reshape(-1).view(np.uint8).data)
    return out


def rgb_to_image(rgb: np.ndarray, header: Header | None = None) -> Image:
    """Wrap an ``H×W×3 uint8 RGB`` array as an rgb8 ``sensor_msgs/Image``."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise InvalidInputError(f"expected H×W×3 uint8 RGB, got {rgb.shape} {rgb.dtype}")
    msg = Image()
    if header is not None:
        msg.header = header
    msg.height, msg.width = int(rgb.shape[0]), int(rgb.shape[1])
    msg.encoding = "rgb8"
    msg.is_bigendian = 0
    msg.step = 3 * msg.width
    msg.data = _bytes_of(rgb)
    return msg


def mask_to_image(mask: np.ndarray, header: Header | None = None) -> Image:
    """Wrap an ``H×W`` mask as an Image: uint16 → 16UC1 (native byte order), bool/uint8 → mono8 (0/255)."""
    msg = Image()
    if header is not None:
        msg.header = header
    if mask.ndim != 2:
        raise InvalidInputError(f"expected an H×W mask, got shape {mask.shape}")
    msg.height, msg.width = int(mask.shape[0]), int(mask.shape[1])
    if mask.dtype == np.uint16:
        msg.encoding = "16UC1"
        msg.is_bigendian = int(sys.byteorder == "big")
        msg.step = 2 * msg.width
        msg.data = _bytes_of(mask)
    elif mask.dtype in (np.bool_, np.uint8):
        msg.encoding = "mono8"
        msg.is_bigendian = 0
        msg.step = msg.width
        msg.data = _bytes_of(mask.astype(np.uint8) * 255 if mask.dtype == np.bool_ else mask)
    else:
        raise InvalidInputError(f"mask dtype {mask.dtype} not supported; use uint16, uint8 or bool")
    return msg


def instance_image_to_array(msg: Image) -> np.ndarray:
    """Read a 16UC1 instance image back to ``H×W uint16`` (honours step and endianness)."""
    if msg.encoding not in INSTANCE_ENCODINGS:
        raise UnsupportedEncodingError(msg.encoding, INSTANCE_ENCODINGS)
    return decode_mask(msg)
