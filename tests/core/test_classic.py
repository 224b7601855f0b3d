"""The classic backend: grid descriptors that tell colour and texture apart, GrabCut masks."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from perovss_ros.core.classic import ClassicEncoder, GrabCutDecoder
from perovss_ros.core.errors import InvalidInputError
from perovss_ros.core.matching import mask_to_grid
from perovss_ros.core.protocols import ImageEncoder, MaskDecoder
from perovss_ros.core.types import Prompts
from tests.core.images import BLUE, RED, background, iou, put_square


def test_protocols_and_geometry():
    enc, dec = ClassicEncoder(), GrabCutDecoder()
    assert isinstance(enc, ImageEncoder) and isinstance(dec, MaskDecoder)
    assert dec.supports_guidance is False
    feats = enc.encode(background(120, 160))
    # longest side 160 -> 320 (scale 2), stride 8: 40×30 grid
    assert feats.scale == pytest.approx(2.0)
    assert feats.grid.shape == (enc.channels, 30, 40)
    assert feats.grid.dtype == torch.float32
    assert feats.valid_hw == (30, 40)


def test_descriptor_separates_colour_and_texture():
    img, red_striped = put_square(background(), 10, 10, 40, RED, stripes=True)
    img, blue_striped = put_square(img, 100, 10, 40, BLUE, stripes=True)
    img, red_plain = put_square(img, 60, 70, 40, RED, stripes=False)
    img2, red_again = put_square(background(seed=5), 90, 60, 40, RED, stripes=True)
    enc = ClassicEncoder()
    f1, f2 = enc.encode(img), enc.encode(img2)

    def mean_vec(f, mask):
        cells = mask_to_grid(mask, f) >= 1.0
        return F.normalize(f.grid.permute(1, 2, 0)[cells].mean(0), dim=0)

    target = mean_vec(f1, red_striped)
    same = float(target @ mean_vec(f2, red_again))
    assert same > float(target @ mean_vec(f1, blue_striped))
    assert same > float(target @ mean_vec(f1, red_plain))


def test_encoder_rejects_bad_images():
    enc = ClassicEncoder()
    with pytest.raises(InvalidInputError):
        enc.encode(np.zeros((10, 10), np.uint8))
    with pytest.raises(InvalidInputError):
        enc.encode(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(InvalidInputError):
        enc.encode(np.zeros((0, 10, 3), np.uint8))


def test_grabcut_from_box_and_from_point():
    img, mask = put_square(background(), 50, 40, 36, RED)
    enc, dec = ClassicEncoder(), GrabCutDecoder()
    feats = enc.encode(img)
    prompts = [
        Prompts(points=np.array([[68, 58]], np.float32), labels=np.array([1]), box=(46, 36, 90, 80)),
        Prompts(points=np.array([[68, 58], [5, 5]], np.float32), labels=np.array([1, 0])),
    ]
    out = dec.decode(feats, img, prompts)
    assert out.masks.shape == (2, 1, 120, 160) and out.masks.dtype == bool
    assert out.scores.shape == (2, 1)
    assert out.logits is None
    assert iou(out.masks[0, 0], mask) > 0.8
    assert iou(out.masks[1, 0], mask) > 0.8


def test_grabcut_without_positive_prompt_is_empty():
    img = background()
    out = GrabCutDecoder().decode(ClassicEncoder().encode(img), img,
                                  [Prompts(points=np.array([[5, 5]], np.float32), labels=np.array([0]))])
    assert not out.masks.any()


def test_grabcut_masks_do_not_depend_on_the_thread_count():
    import cv2

    from perovss_ros.sim.scenes import make_scene

    # A cluttered sim frame: without per-call seeding its masks differ by tens of pixels between
    # threads (each starts OpenCV's generator afresh) and after the caller's own draws.
    scene = make_scene(seed=5, num_frames=1, size=(320, 240), num_objects=2, difficulty="hard")
    img, objects = scene.frames[0], scene.object_gt[0]
    feats = ClassicEncoder().encode(img)
    prompts = []
    for object_id in np.unique(objects)[1:]:
        ys, xs = np.nonzero(objects == object_id)
        prompts.append(Prompts(points=np.array([[xs.mean(), ys.mean()]], np.float32), labels=np.array([1]),
                               box=(xs.min() - 6.0, ys.min() - 6.0, xs.max() + 7.0, ys.max() + 7.0)))
    assert len(prompts) >= 4
    alone = GrabCutDecoder(threads=1).decode(feats, img, prompts)
    assert alone.masks.any(axis=(1, 2, 3)).all()
    parallel = GrabCutDecoder(threads=3)
    for draw in (7, 99):  # the pool's threads reused, and the caller's generator moved: still the same
        cv2.setRNGSeed(draw)
        cv2.randu(np.zeros((8, 8), np.float32), 0.0, 1.0)
        out = parallel.decode(feats, img, prompts)
        assert np.array_equal(out.masks, alone.masks)
        assert np.array_equal(out.scores, alone.scores)


def test_decode_threads_auto_and_bounds():
    from perovss_ros.core.classic.decoder import MAX_AUTO_THREADS, decode_threads
    from perovss_ros.core.config import PipelineConfig

    assert 1 <= decode_threads(0) <= MAX_AUTO_THREADS
    assert decode_threads(7) == 7
    with pytest.raises(ValueError):
        decode_threads(-1)
    with pytest.raises(InvalidInputError, match="decode_threads"):
        PipelineConfig(decode_threads=-2)
    with pytest.raises(InvalidInputError, match="decode_threads"):
        PipelineConfig(decode_threads=1.5)


def _mug_with_handle() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 200 px red body with a 5 px thick ring handle on a 480×640 background: image, object mask, handle mask."""
    img = background(480, 640, seed=3)
    body = np.zeros((480, 640), np.uint8)
    cv2.rectangle(body, (200, 140), (400, 340), 1, -1)
    handle = np.zeros_like(body)
    cv2.ellipse(handle, (400, 240), (45, 60), 0, -90, 90, 1, 5)
    handle &= ~body.astype(bool)
    obj = (body | handle).astype(bool)
    img[obj] = RED
    return img, obj, handle.astype(bool)


def test_decode_size_keeps_thin_parts():
    """The handle's 5 px ring survives a decode at the default crop side and is lost when the crop is
    shrunk to 64 px (the 270 px crop is scaled by about 0.24, leaving the ring about a pixel wide);
    ``decode_size`` reaches the backend's decoder."""
    from perovss_ros.core.classic import build_classic_backend
    from perovss_ros.core.config import DECODE_SIZE, PipelineConfig

    img, obj, handle = _mug_with_handle()
    prompts = [Prompts(points=np.array([[300.0, 240.0]], np.float32), labels=np.array([1]))]
    kept = {}
    for size in (DECODE_SIZE, 64):
        encoder, decoder = build_classic_backend(PipelineConfig(backend="classic", decode_size=size))
        assert decoder.work_size == size
        mask = decoder.decode(encoder.encode(img), img, prompts).masks[0, 0]
        assert iou(mask, obj) > 0.8  # the body is found either way
        kept[size] = float(mask[handle].mean())
    assert kept[DECODE_SIZE] >= 0.8
    assert kept[64] <= 0.5


def test_decode_size_bounds():
    from perovss_ros.core.config import MIN_REFINE_SIZE, PipelineConfig

    assert PipelineConfig(decode_size=MIN_REFINE_SIZE).decode_size == MIN_REFINE_SIZE
    for bad in (MIN_REFINE_SIZE - 1, 0, 100.5, True):
        with pytest.raises(InvalidInputError, match="decode_size"):
            PipelineConfig(decode_size=bad)
