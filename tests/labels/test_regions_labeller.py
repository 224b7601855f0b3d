"""Region embeddings (dense and crops) and the labeller's API on the tiny random open_clip model."""

from __future__ import annotations

import numpy as np
import pytest

from perovss_ros.core.errors import InvalidInputError
from perovss_ros.core.labels import RegionLabeller
from tests.labels.tiny import tiny_encoder


def _image(h: int = 32, w: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_auto_mode_picks_dense_for_a_vit() -> None:
    assert tiny_encoder().region_mode == "dense"
    assert tiny_encoder(region_mode="crops").region_mode == "crops"
    with pytest.raises(InvalidInputError):
        tiny_encoder(region_mode="sliding")


def test_dense_region_of_whole_patches_is_their_mean() -> None:
    encoder = tiny_encoder()
    rgb = _image()
    tokens = encoder.dense_embeddings(rgb)            # 32 px at patch 8: a 4×4 grid, 8 px a patch
    assert tokens.shape == (4, 4, 32)
    mask = np.zeros((32, 32), bool)
    mask[0:8, 0:16] = True                            # patches (0, 0) and (0, 1)
    mean = (tokens[0, 0] + tokens[0, 1]) / 2
    got = encoder.encode_regions(rgb, mask[None])
    np.testing.assert_allclose(got[0], mean / np.linalg.norm(mean), atol=1e-5)


def test_dense_input_keeps_the_aspect_ratio() -> None:
    encoder = tiny_encoder()
    assert encoder.dense_input_hw((480, 640)) == (32, 40)
    assert encoder.dense_embeddings(_image(48, 64)).shape == (4, 5, 32)


def test_masked_crop_shows_only_the_mask() -> None:
    encoder = tiny_encoder(region_mode="crops", crop_context=0.0)
    rgb = np.zeros((40, 40, 3), np.uint8)
    rgb[10:30, 10:30] = (200, 30, 40)
    square = np.zeros((40, 40), bool)
    square[10:30, 10:30] = True
    half = square.copy()
    half[10:30, 20:30] = False                        # left half: a 20×10 box, centred in a 20×20 crop
    crops = encoder.masked_crops(rgb, np.stack([square, half]))
    assert crops.shape == (2, 32, 32, 3)
    assert (crops[0] == (200, 30, 40)).all()
    fill = np.round(np.asarray((0.48145466, 0.4578275, 0.40821073)) * 255).astype(np.uint8)
    assert (crops[1][:, 12:20] == (200, 30, 40)).all()   # the mask's columns, scaled by 32/20
    assert (crops[1][:, :6] == fill).all() and (crops[1][:, 26:] == fill).all()


@pytest.mark.parametrize("mode", ["dense", "crops"])
def test_batched_regions_equal_one_at_a_time(mode: str) -> None:
    encoder = tiny_encoder(region_mode=mode)
    rgb = _image(40, 56, seed=2)
    masks = np.zeros((3, 40, 56), bool)
    masks[0, 2:20, 3:30] = True
    masks[1, 15:40, 20:56] = True
    masks[2, 30:34, 0:5] = True
    together = encoder.encode_regions(rgb, masks)
    apart = np.concatenate([encoder.encode_regions(rgb, [m]) for m in masks])
    assert together.shape == (3, 32)
    np.testing.assert_allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(together, apart, atol=1e-4)


def test_bad_masks_are_refused() -> None:
    encoder = tiny_encoder()
    rgb = _image()
    with pytest.raises(InvalidInputError, match="32×32"):
        encoder.encode_regions(rgb, np.ones((1, 16, 16), bool))
    with pytest.raises(InvalidInputError, match="empty"):
        encoder.encode_regions(rgb, np.zeros((1, 32, 32), bool))
    assert encoder.encode_regions(rgb, []).shape == (0, 32)


def test_labeller_answers_every_mask_from_its_vocabulary() -> None:
    labeller = RegionLabeller(tiny_encoder(), vocabulary=["mug", "ball"], min_probability=0.01)
    rgb = _image(48, 64, seed=4)
    masks = np.zeros((2, 48, 64), bool)
    masks[0, :24] = True
    masks[1, 24:, 10:50] = True
    out = labeller.label(rgb, masks)
    assert len(out) == 2
    for region in out:
        assert region.nearest in ("mug", "ball")
        assert region.label in ("mug", "ball")      # min_probability 0.01 accepts the nearest word
        assert 0.0 < region.score <= 1.0
    labeller.set_vocabulary(["box"])
    assert labeller.vocabulary == ("box",)
    assert {r.nearest for r in labeller.label(rgb, masks)} == {"box"}


def test_infer_category_uses_every_shot() -> None:
    labeller = RegionLabeller(tiny_encoder(), vocabulary=["mug", "ball"])
    rgb = _image(32, 32, seed=5)
    mask = np.zeros((32, 32), bool)
    mask[4:20, 4:20] = True
    got = labeller.infer_category([rgb, rgb], [mask, mask])
    shots = labeller.region_embeddings(rgb, [mask])
    expected = labeller.classifier.classify(shots)[0]
    assert got.nearest == expected.nearest
    assert got.score == pytest.approx(expected.score, rel=1e-4)
    with pytest.raises(InvalidInputError, match="one mask per image"):
        labeller.infer_category([rgb], [])
