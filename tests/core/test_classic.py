"""The classic backend: grid descriptors that tell colour and texture apart, GrabCut masks."""

from __future__ import annotations

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
