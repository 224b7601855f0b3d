"""Decode ``sensor_msgs`` Image / CompressedImage messages read from bags (rosbags objects, no rclpy).

The message is duck-typed: ``Image`` needs ``height``, ``width``, ``encoding``,
``is_bigendian``, ``step`` and ``data``; ``CompressedImage`` needs ``format``
and ``data``. Row padding (``step``) and byte order are honoured. Errors are
InvalidInputError naming the encoding or size that does not fit.
"""

from __future__ import annotations

import cv2
import numpy as np

from perovss_ros.core.errors import InvalidInputError

#: Camera encodings decoded to RGB, with their channel count.
IMAGE_ENCODINGS: dict[str, int] = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1}
#: Mask encodings (pixel = instance id, or non-zero = object), with their bytes per pixel.
MASK_ENCODINGS: dict[str, int] = {"16UC1": 2, "mono16": 2, "mono8": 1, "8UC1": 1}
COMPRESSED_FORMATS = ("jpeg", "jpg", "png")

_TO_RGB = {"bgr8": cv2.COLOR_BGR2RGB, "rgba8": cv2.COLOR_RGBA2RGB, "bgra8": cv2.COLOR_BGRA2RGB,
           "mono8": cv2.COLOR_GRAY2RGB}


def is_compressed(msg: object) -> bool:
    """Whether ``msg`` looks like a ``sensor_msgs/CompressedImage``."""
    return hasattr(msg, "format") and not hasattr(msg, "encoding")


def _rows(msg: object, bytes_per_pixel: int) -> np.ndarray:
    """``H×(W·bpp)`` uint8 array of the image bytes, row padding removed."""
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    row = w * bytes_per_pixel
    if h <= 0 or w <= 0:
        raise InvalidInputError(f"image message is {w}×{h}; it must not be empty")
    if step < row:
        raise InvalidInputError(f"image step {step} is smaller than width × bytes per pixel = {row}")
    buf = np.frombuffer(memoryview(msg.data).cast("B"), dtype=np.uint8)
    if buf.size < (h - 1) * step + row:
        raise InvalidInputError(f"image data has {buf.size} bytes; {w}×{h} {msg.encoding} with step {step} "
                                f"needs {(h - 1) * step + row}")
    return np.lib.stride_tricks.as_strided(buf, shape=(h, row), strides=(step, 1))


def _decompress(msg: object, flags: int) -> np.ndarray:
    fmt = str(msg.format).lower()
    if not any(f in fmt for f in COMPRESSED_FORMATS):
        raise InvalidInputError(f"unsupported compressed format {msg.format!r}; use jpeg or png")
    img = cv2.imdecode(np.frombuffer(memoryview(msg.data).cast("B"), np.uint8), flags)
    if img is None:
        raise InvalidInputError(f"cannot decode the {msg.format!r} compressed image (corrupt data)")
    return img


def decode_image(msg: object) -> np.ndarray:
    """A camera image message as ``H×W×3`` uint8 RGB (a new array).

    Accepts Image in rgb8, bgr8, rgba8, bgra8 or mono8, and CompressedImage
    (jpeg or png; decoded as BGR by OpenCV, returned as RGB).
    """
    if is_compressed(msg):
        img = _decompress(msg, cv2.IMREAD_COLOR)
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    encoding = str(msg.encoding)
    channels = IMAGE_ENCODINGS.get(encoding)
    if channels is None:
        raise InvalidInputError(f"unsupported image encoding {encoding!r}; use one of {', '.join(IMAGE_ENCODINGS)}")
    pixels = _rows(msg, channels).reshape(int(msg.height), int(msg.width), channels)
    if encoding == "rgb8":
        return np.ascontiguousarray(pixels)
    return cv2.cvtColor(np.ascontiguousarray(pixels), _TO_RGB[encoding])


def decode_mask(msg: object) -> np.ndarray:
    """A mask message as ``H×W`` uint16 (pixel = instance id; a binary mono8 mask gives 0/255).

    Accepts Image in 16UC1, mono16, mono8 or 8UC1 and CompressedImage png.
    """
    if is_compressed(msg):
        img = _decompress(msg, cv2.IMREAD_UNCHANGED)
        if img.ndim != 2:
            raise InvalidInputError(f"compressed mask has {img.shape[2]} channels; send a single-channel png")
        return img.astype(np.uint16)
    encoding = str(msg.encoding)
    bpp = MASK_ENCODINGS.get(encoding)
    if bpp is None:
        raise InvalidInputError(f"unsupported mask encoding {encoding!r}; use one of {', '.join(MASK_ENCODINGS)}")
    rows = np.ascontiguousarray(_rows(msg, bpp))
    h, w = int(msg.height), int(msg.width)
    if bpp == 1:
        return rows.reshape(h, w).astype(np.uint16)
    order = ">u2" if bool(msg.is_bigendian) else "<u2"
    return rows.view(order).reshape(h, w).astype(np.uint16)  # astype: to native byte order
