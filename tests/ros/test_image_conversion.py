"""Image message ↔ numpy conversions: every supported encoding, padding, bad input."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage, Image

from perovss_ros.core.errors import InvalidInputError
from perovss_ros.ros.image_conversion import (
    UnsupportedEncodingError,
    compressed_to_rgb,
    image_to_mask,
    image_to_rgb,
    instance_image_to_array,
    mask_to_image,
    rgb_to_image,
)

H, W = 12, 16


def _rgb() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (H, W, 3), dtype=np.uint8)


def _msg(pixels: np.ndarray, encoding: str, pad: int = 0) -> Image:
    """Hand-built Image with ``pad`` junk bytes at the end of every row."""
    rows = pixels.reshape(pixels.shape[0], -1)
    junk = np.full((rows.shape[0], pad), 0xAB, dtype=np.uint8)
    data = np.concatenate([rows, junk], axis=1)
    return Image(height=pixels.shape[0], width=pixels.shape[1], encoding=encoding,
                 step=data.shape[1], data=data.tobytes())


@pytest.mark.parametrize("pad", [0, 5])
def test_every_encoding_gives_rgb(pad: int) -> None:
    rgb = _rgb()
    # Each encoding built independently of the converter: channel order written by hand.
    sources = {
        "rgb8": rgb,
        "bgr8": rgb[:, :, ::-1],
        "rgba8": np.dstack([rgb, np.full((H, W), 7, np.uint8)]),
        "bgra8": np.dstack([rgb[:, :, ::-1], np.full((H, W), 7, np.uint8)]),
    }
    for enc, pixels in sources.items():
        out = image_to_rgb(_msg(np.ascontiguousarray(pixels), enc, pad))
        assert out.shape == (H, W, 3) and out.dtype == np.uint8, enc
        assert np.array_equal(out, rgb), enc
    gray = rgb[:, :, 0].copy()
    out = image_to_rgb(_msg(gray, "mono8", pad))
    assert np.array_equal(out, np.repeat(gray[:, :, None], 3, axis=2))


def test_rgb8_is_a_view_of_the_message() -> None:
    msg = rgb_to_image(_rgb())  # data is a writable array.array
    out = image_to_rgb(msg)
    msg.data[0] = (int(msg.data[0]) + 1) % 256
    assert out[0, 0, 0] == msg.data[0], "rgb8 without padding must not be copied"


def test_round_trip_rgb_and_header() -> None:
    rgb = _rgb()
    msg = rgb_to_image(rgb)
    assert (msg.encoding, msg.step, msg.width, msg.height) == ("rgb8", 3 * W, W, H)
    assert np.array_equal(image_to_rgb(msg), rgb)


@pytest.mark.parametrize("encoding", ["32FC1", "yuv422", "16UC1", ""])
def test_unsupported_encoding_is_named(encoding: str) -> None:
    msg = Image(height=H, width=W, encoding=encoding, step=W * 4, data=bytes(H * W * 4))
    with pytest.raises(UnsupportedEncodingError) as info:
        image_to_rgb(msg)
    assert repr(encoding) in str(info.value) and "rgb8" in str(info.value)


def test_bad_sizes() -> None:
    with pytest.raises(InvalidInputError, match="0×0"):
        image_to_rgb(Image(height=0, width=0, encoding="rgb8", step=0, data=b""))
    with pytest.raises(InvalidInputError, match="over the limit"):
        image_to_rgb(_msg(_rgb(), "rgb8"), max_pixels=H * W - 1)
    truncated = _msg(_rgb(), "rgb8")
    truncated.data = bytes(truncated.data)[:-10]
    with pytest.raises(InvalidInputError, match="bytes"):
        image_to_rgb(truncated)
    short_step = _msg(_rgb(), "rgb8")
    short_step.step = W
    with pytest.raises(InvalidInputError, match="step"):
        image_to_rgb(short_step)


@pytest.mark.parametrize("fmt,ext", [("png", ".png"), ("jpeg", ".jpg"), ("rgb8; jpeg compressed bgr8", ".jpg")])
def test_compressed(fmt: str, ext: str) -> None:
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[:, : W // 2] = (200, 30, 10)  # flat areas survive jpeg almost exactly
    ok, buf = cv2.imencode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    out = compressed_to_rgb(CompressedImage(format=fmt, data=buf.tobytes()))
    assert out.shape == (H, W, 3)
    err = np.abs(out.astype(int) - rgb)
    if ext == ".png":
        assert err.max() == 0
    else:  # lossy: small mean error, and the red half stays red (colour order kept)
        assert err.mean() < 4
        assert np.abs(out[H // 2, 2].astype(int) - (200, 30, 10)).max() <= 12


def test_compressed_bad_input() -> None:
    with pytest.raises(UnsupportedEncodingError, match="tiff"):
        compressed_to_rgb(CompressedImage(format="tiff", data=b"xx"))
    with pytest.raises(InvalidInputError, match="decode"):
        compressed_to_rgb(CompressedImage(format="png", data=b"not a png"))
    _ok, buf = cv2.imencode(".png", np.zeros((H, W, 3), np.uint8))
    with pytest.raises(InvalidInputError, match="over the limit"):
        compressed_to_rgb(CompressedImage(format="png", data=buf.tobytes()), max_pixels=10)


def test_masks_and_instance_images() -> None:
    mask = np.zeros((H, W), bool)
    mask[2:5, 3:9] = True
    msg = mask_to_image(mask)
    assert msg.encoding == "mono8"
    assert np.array_equal(image_to_mask(msg), mask)
    padded = _msg(mask.astype(np.uint8) * 9, "8UC1", pad=3)
    assert np.array_equal(image_to_mask(padded), mask)
    with pytest.raises(UnsupportedEncodingError):
        image_to_mask(rgb_to_image(_rgb()))
    ids = np.arange(H * W, dtype=np.uint16).reshape(H, W) * 300
    inst = mask_to_image(ids)
    assert (inst.encoding, inst.step) == ("16UC1", 2 * W)
    assert np.array_equal(instance_image_to_array(inst), ids)
    big = Image(height=H, width=W, encoding="16UC1", is_bigendian=1, step=2 * W,
                data=ids.astype(">u2").tobytes())
    assert np.array_equal(instance_image_to_array(big), ids)


def test_encoding_check_reads_only_the_encoding_field() -> None:
    from sensor_msgs.msg import CompressedImage, Image

    from perovss_ros.ros.image_conversion import check_image_encoding

    # No pixel data at all: the check must not look at it (it runs in the subscription callback).
    for encoding in ("rgb8", "bgr8", "rgba8", "bgra8", "mono8"):
        check_image_encoding(Image(encoding=encoding))
    check_image_encoding(CompressedImage(format="rgb8; jpeg compressed bgr8"))
    with pytest.raises(UnsupportedEncodingError, match="yuv422") as info:
        check_image_encoding(Image(encoding="yuv422"))
    assert info.value.encoding == "yuv422"
    with pytest.raises(UnsupportedEncodingError, match="tiff"):
        check_image_encoding(CompressedImage(format="tiff"))
