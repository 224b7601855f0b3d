"""Conversions between ``sensor_msgs`` images and numpy arrays, without needless copies.

Inputs are viewed in place (``np.frombuffer`` plus a strided view that honours the
row padding ``step``); a copy is made only where the colour order or channel count
must change, or where padding makes the view non-contiguous. Errors are
:class:`InvalidInputError` (a ``ValueError``) whose message names what to fix.
"""

from __future__ import annotations

import array
import sys

import cv2
import numpy as np
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from perovss_ros.core.errors import InvalidInputError

#: Encodings accepted for camera frames, with their channel count.
RGB_ENCODINGS: dict[str, int] = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1}
#: Encodings accepted for teaching masks (nonzero = object).
MASK_ENCODINGS: dict[str, int] = {"mono8": 1, "8UC1": 1}
#: CompressedImage formats we decode (the format string contains one of these).
COMPRESSED_FORMATS = ("jpeg", "jpg", "png")

_TO_RGB = {
    "bgr8": cv2.COLOR_BGR2RGB,
    "rgba8": cv2.COLOR_RGBA2RGB,
    "bgra8": cv2.COLOR_BGRA2RGB,
    "mono8": cv2.COLOR_GRAY2RGB,
}


class UnsupportedEncodingError(InvalidInputError):
    """An image encoding or compressed format this node does not convert."""

    def __init__(self, encoding: str, supported: list[str] | tuple[str, ...]):
        self.encoding = encoding
        super().__init__(
            f"unsupported image encoding {encoding!r}; send one of {', '.join(supported)}"
        )


def _check_size(height: int, width: int, max_pixels: int | None) -> None:
    if height <= 0 or width <= 0:
        raise InvalidInputError(f"image is {width}×{height}; send a non-empty image")
    if max_pixels is not None and height * width > max_pixels:
        raise InvalidInputError(
            f"image is {width}×{height} = {height * width} pixels, over the limit of {max_pixels}"
            " (parameter max_image_pixels); send a smaller image or raise the limit"
        )


def _view(msg: Image, channels: int) -> np.ndarray:
    """``H×W×C`` uint8 view of ``msg.data`` (no copy), honouring the row padding ``step``."""
    h, w = int(msg.height), int(msg.width)
    row = w * channels
    step = int(msg.step)
    if step < row:
        raise InvalidInputError(
            f"image step {step} is smaller than width×channels = {row}; fix the publisher's step"
        )
    need = (h - 1) * step + row
    buf = np.frombuffer(msg.data, dtype=np.uint8)
    if buf.size < need:
        raise InvalidInputError(
            f"image data has {buf.size} bytes, {w}×{h} {msg.encoding} with step {step} needs {need}"
        )
    # as_strided over the buffer: row padding is skipped without copying.
    return np.lib.stride_tricks.as_strided(buf, shape=(h, w, channels), strides=(step, channels, 1))


def image_to_rgb(msg: Image, max_pixels: int | None = None) -> np.ndarray:
    """Convert a ``sensor_msgs/Image`` to ``H×W×3 uint8 RGB``.

    rgb8 without padding is returned as a view of the message buffer (no copy);
    other encodings cost exactly one conversion copy. Raises
    :class:`UnsupportedEncodingError` for other encodings and
    :class:`InvalidInputError` for 0×0, oversize or truncated images.
    """
    enc = msg.encoding
    channels = RGB_ENCODINGS.get(enc)
    if channels is None:
        raise UnsupportedEncodingError(enc, list(RGB_ENCODINGS))
    _check_size(int(msg.height), int(msg.width), max_pixels)
    view = _view(msg, channels)
    if enc == "rgb8":
        return np.ascontiguousarray(view)  # copies only when rows are padded
    src = view[:, :, 0] if channels == 1 else view
    if not src.flags.c_contiguous:
        src = np.ascontiguousarray(src)
    return cv2.cvtColor(src, _TO_RGB[enc])


def compressed_to_rgb(msg: CompressedImage, max_pixels: int | None = None) -> np.ndarray:
    """Decode a jpeg/png ``sensor_msgs/CompressedImage`` to ``H×W×3 uint8 RGB``."""
    fmt = msg.format.lower()
    if not any(f in fmt for f in COMPRESSED_FORMATS):
        raise UnsupportedEncodingError(msg.format or "(empty format)", COMPRESSED_FORMATS)
    buf = np.frombuffer(msg.data, dtype=np.uint8)
    if buf.size == 0:
        raise InvalidInputError("compressed image has no data; send a jpeg or png payload")
    bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if bgr is None:
        raise InvalidInputError(f"could not decode the {msg.format!r} payload; send a valid jpeg or png")
    _check_size(bgr.shape[0], bgr.shape[1], max_pixels)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def image_to_mask(msg: Image, max_pixels: int | None = None) -> np.ndarray:
    """Convert a mono8/8UC1 mask image to ``H×W bool`` (nonzero = object)."""
    if msg.encoding not in MASK_ENCODINGS:
        raise UnsupportedEncodingError(msg.encoding, list(MASK_ENCODINGS))
    _check_size(int(msg.height), int(msg.width), max_pixels)
    return _view(msg, 1)[:, :, 0] != 0


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
    if msg.encoding not in ("16UC1", "mono16"):
        raise UnsupportedEncodingError(msg.encoding, ["16UC1", "mono16"])
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    dtype = np.dtype(">u2" if msg.is_bigendian else "<u2")
    buf = np.frombuffer(msg.data, dtype=np.uint8)
    if step < 2 * w or buf.size < (h - 1) * step + 2 * w:
        raise InvalidInputError(f"16UC1 image data too short for {w}×{h} with step {step}")
    rows = np.lib.stride_tricks.as_strided(buf, shape=(h, 2 * w), strides=(step, 1))
    return np.ascontiguousarray(rows).view(dtype).astype(np.uint16, copy=False).reshape(h, w)
