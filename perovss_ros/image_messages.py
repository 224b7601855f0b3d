"""Decode ``sensor_msgs`` Image / CompressedImage messages: rosbags objects and rclpy messages alike.

This is the one decoder of the project, below both ``ros/`` and ``sim/``: the bag
readers (``sim/bags.py``) use it directly, the node's ``ros/image_conversion.py``
wraps it. It imports no ROS message type and no rclpy, so ``sim/`` stays free of
rclpy and neither package reaches into the other for it.

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


class UnsupportedEncodingError(InvalidInputError):
    """An image encoding or compressed format that is not decoded; ``encoding`` names it."""

    def __init__(self, encoding: str, supported: list[str] | tuple[str, ...], what: str = "image encoding"):
        self.encoding = encoding
        super().__init__(f"unsupported {what} {encoding!r}; use one of {', '.join(supported)}")


def check_size(height: int, width: int, max_pixels: int | None = None) -> None:
    """InvalidInputError for an empty image or one over ``max_pixels`` (None: no limit)."""
    if height <= 0 or width <= 0:
        raise InvalidInputError(f"image message is {width}×{height}; it must not be empty")
    if max_pixels is not None and height * width > max_pixels:
        raise InvalidInputError(
            f"image is {width}×{height} = {height * width} pixels, over the limit of {max_pixels}"
            " (parameter max_image_pixels); send a smaller image or raise the limit"
        )


def is_compressed(msg: object) -> bool:
    """Whether ``msg`` looks like a ``sensor_msgs/CompressedImage``."""
    return hasattr(msg, "format") and not hasattr(msg, "encoding")


def check_image_encoding(msg: object) -> None:
    """UnsupportedEncodingError unless ``msg`` is a camera image this module decodes.

    Reads only the ``encoding``/``format`` field, so it is cheap enough for a
    subscription callback: frames that can never be decoded are rejected on arrival.
    """
    if is_compressed(msg):
        if not any(f in str(msg.format).lower() for f in COMPRESSED_FORMATS):
            raise UnsupportedEncodingError(str(msg.format) or "(empty format)", COMPRESSED_FORMATS,
                                           "compressed format")
    elif str(msg.encoding) not in IMAGE_ENCODINGS:
        raise UnsupportedEncodingError(str(msg.encoding), tuple(IMAGE_ENCODINGS))


def _rows(msg: object, bytes_per_pixel: int) -> np.ndarray:
    """``H×(W·bpp)`` uint8 array of the image bytes, row padding removed."""
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    row = w * bytes_per_pixel
    check_size(h, w)
    if step < row:
        raise InvalidInputError(f"image step {step} is smaller than width × bytes per pixel = {row}")
    buf = np.frombuffer(memoryview(msg.data).cast("B"), dtype=np.uint8)
    if buf.size < (h - 1) * step + row:
        raise InvalidInputError(f"image data has {buf.size} bytes; {w}×{h} {msg.encoding} with step {step} "
                                f"needs {(h - 1) * step + row}")
    return np.lib.stride_tricks.as_strided(buf, shape=(h, row), strides=(step, 1))


def _decompress(msg: object, flags: int) -> np.ndarray:
    if not any(f in str(msg.format).lower() for f in COMPRESSED_FORMATS):
        raise UnsupportedEncodingError(str(msg.format) or "(empty format)", COMPRESSED_FORMATS, "compressed format")
    buf = np.frombuffer(memoryview(msg.data).cast("B"), np.uint8)
    if buf.size == 0:
        raise InvalidInputError("compressed image has no data; send a jpeg or png payload")
    img = cv2.imdecode(buf, flags)
    if img is None:
        raise InvalidInputError(f"cannot decode the {msg.format!r} compressed image (corrupt data)")
    return img


def decode_image(msg: object, max_pixels: int | None = None) -> np.ndarray:
    """A camera image message as ``H×W×3`` uint8 RGB.

    Accepts Image in rgb8, bgr8, rgba8, bgra8 or mono8, and CompressedImage
    (jpeg or png; decoded as BGR by OpenCV, returned as RGB). rgb8 without row
    padding is returned as a view of the message buffer (no copy); every other
    case costs exactly one conversion copy. ``max_pixels`` bounds the size.
    """
    check_image_encoding(msg)
    if is_compressed(msg):
        img = _decompress(msg, cv2.IMREAD_COLOR)
        check_size(img.shape[0], img.shape[1], max_pixels)
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    encoding = str(msg.encoding)
    channels = IMAGE_ENCODINGS[encoding]
    check_size(int(msg.height), int(msg.width), max_pixels)
    pixels = _rows(msg, channels).reshape(int(msg.height), int(msg.width), channels)
    if encoding == "rgb8":
        return np.ascontiguousarray(pixels)
    return cv2.cvtColor(np.ascontiguousarray(pixels), _TO_RGB[encoding])


def decode_mask(msg: object, max_pixels: int | None = None) -> np.ndarray:
    """A mask message as ``H×W`` uint16 (pixel = instance id; a binary mono8 mask gives 0/255).

    Accepts Image in 16UC1, mono16, mono8 or 8UC1 and CompressedImage png.
    """
    if is_compressed(msg):
        img = _decompress(msg, cv2.IMREAD_UNCHANGED)
        if img.ndim != 2:
            raise InvalidInputError(f"compressed mask has {img.shape[2]} channels; send a single-channel png")
        check_size(img.shape[0], img.shape[1], max_pixels)
        return img.astype(np.uint16)
    encoding = str(msg.encoding)
    bpp = MASK_ENCODINGS.get(encoding)
    if bpp is None:
        raise UnsupportedEncodingError(encoding, tuple(MASK_ENCODINGS), "mask encoding")
    check_size(int(msg.height), int(msg.width), max_pixels)
    rows = np.ascontiguousarray(_rows(msg, bpp))
    h, w = int(msg.height), int(msg.width)
    if bpp == 1:
        return rows.reshape(h, w).astype(np.uint16)
    order = ">u2" if bool(msg.is_bigendian) else "<u2"
    return rows.view(order).reshape(h, w).astype(np.uint16)  # astype: to native byte order
