"""PerSAM steps checked against their formulas on small hand-made tensors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from perovss_ros.core import matching
from perovss_ros.core.types import Features


def _features(grid: torch.Tensor, image_hw: tuple[int, int], scale: float = 1.0, stride: float = 1.0) -> Features:
    return Features(grid=grid, image_hw=image_hw, scale=scale, stride=stride, valid_hw=tuple(grid.shape[-2:]))


def test_target_vectors_mean_maxmean_and_embedding():
    local = torch.tensor([[3.0, 0.0], [1.0, 2.0]])
    tv = matching.target_vectors(local)
    # mean = (2, 1); max = (3, 2); (max + mean) / 2 = (2.5, 1.5)
    assert torch.allclose(tv.embedding, torch.tensor([2.0, 1.0]))
    assert torch.allclose(tv.mean, torch.tensor([2.0, 1.0]) / math.sqrt(5))
    assert torch.allclose(tv.max_mean, torch.tensor([2.5, 1.5]) / math.sqrt(2.5**2 + 1.5**2))


def test_target_vectors_reject_empty():
    with pytest.raises(ValueError):
        matching.target_vectors(torch.zeros(0, 4))


def test_local_features_picks_masked_cells():
    grid = torch.arange(2 * 2 * 3, dtype=torch.float32).reshape(2, 2, 3)  # C=2, h=2, w=3
    cells = torch.tensor([[True, False, False], [False, False, True]])
    local = matching.local_features(grid, cells)
    # cell (0,0) -> (grid[0,0,0], grid[1,0,0]) = (0, 6); cell (1,2) -> (5, 11)
    assert local.tolist() == [[0.0, 6.0], [5.0, 11.0]]


def test_confidence_grid_is_cosine_per_cell_for_all_targets():
    grid = torch.zeros(2, 1, 3)
    grid[:, 0, 0] = torch.tensor([1.0, 0.0])
    grid[:, 0, 1] = torch.tensor([0.0, 5.0])
    grid[:, 0, 2] = torch.tensor([-2.0, 2.0])
    targets = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    maps = matching.confidence_grid(targets, grid)
    assert maps.shape == (2, 1, 3)
    h = 1 / math.sqrt(2)
    assert torch.allclose(maps[0, 0], torch.tensor([1.0, 0.0, -h]), atol=1e-6)
    assert torch.allclose(maps[1, 0], torch.tensor([0.0, 1.0, h]), atol=1e-6)


def test_few_shot_maps_merge_by_pixelwise_max_per_concept():
    maps = torch.tensor([[[0.1, 0.9]], [[0.5, 0.2]], [[0.3, 0.3]]])  # 3 shots: concept A has 2, B has 1
    merged = matching.max_over_groups(maps, [2, 1])
    assert torch.allclose(merged, torch.tensor([[[0.5, 0.9]], [[0.3, 0.3]]]))


def test_select_points_argmax_argmin_and_top2():
    m = torch.zeros(1, 4, 5)
    m[0, 1, 3] = 0.9  # best: x=3, y=1
    m[0, 2, 0] = 0.8  # second: x=0, y=2
    m[0, 3, 4] = -0.7  # worst: x=4, y=3
    pos, neg = matching.select_points(m, num_positive=2)
    assert pos.tolist() == [[[3.0, 1.0], [0.0, 2.0]]]
    assert neg.tolist() == [[4.0, 3.0]]


def test_attention_bias_is_sigmoid_of_standardised_map():
    s = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    bias = matching.attention_bias(s)
    std = float(np.std([0, 1, 2, 3], ddof=1))  # torch.std is the unbiased estimate
    expected = [[1 / (1 + math.exp(-(v - 1.5) / std)) for v in row] for row in ([0, 1], [2, 3])]
    assert torch.allclose(bias, torch.tensor(expected), atol=1e-6)


def test_attention_bias_padded_cells_get_lowest_value():
    s = torch.tensor([[0.0, 1.0, 9.0], [2.0, 3.0, 9.0]])
    bias = matching.attention_bias(s, valid_hw=(2, 2))
    assert torch.allclose(bias[:, :2], matching.attention_bias(s[:, :2]))
    assert torch.allclose(bias[:, 2], bias[:, :2].min().expand(2))


def test_mask_to_grid_follows_scale_and_padding():
    # 8×4 image (H×W) resized by 0.5 to 4×2, padded to a 4×4 input, stride 2 -> 2×2 grid.
    mask = np.zeros((8, 4), bool)
    mask[:4, :] = True  # top half of the image
    feats = _features(torch.zeros(1, 2, 2), (8, 4), scale=0.5, stride=2.0)
    cov = matching.mask_to_grid(mask, feats)
    # resized mask covers rows 0-1 (all of input columns 0-1): cell (0,0) full, (0,1) is padding
    assert cov[0, 0] == pytest.approx(1.0)
    assert cov[0, 1] == pytest.approx(0.0)
    assert cov[1, 0] == pytest.approx(0.0)


def test_upsample_to_image_undoes_padding():
    grid = torch.tensor([[[1.0, 5.0], [3.0, 5.0]]])  # right column is padding (image is 8×4)
    feats = _features(torch.zeros(1, 2, 2), (8, 4), scale=0.5, stride=2.0)
    up = matching.upsample_to_image(grid, feats)
    assert up.shape == (1, 8, 4)
    assert float(up.max()) < 5.0  # nothing from the padded column leaks far in
    assert float(up[0, 0].mean()) < float(up[0, -1].mean())


def test_tight_box_exclusive_end():
    m = np.zeros((10, 10), bool)
    m[2:5, 3:7] = True
    assert matching.tight_box(m) == (3.0, 2.0, 7.0, 5.0)
    assert matching.tight_box(np.zeros((4, 4), bool)) is None


# --- PerSAM as its reference code computes it (issue 10 item 0): hand-computed intermediates.


def test_persam_cells_sample_cell_centres_of_the_normalised_perseg_mask():
    # 4×8 image (H×W), no resize, stride 4: an 8×8 input (rows 4-7 padding) and a 2×2 grid.
    # Bilinear 8 -> 2 samples input coordinate (i + 0.5) * 4 - 0.5 = 1.5 and 5.5: the mean of
    # pixels 1-2 (rows and columns) for cell 0 and 5-6 for cell 1.
    feats = Features(grid=torch.zeros(1, 2, 2), image_hw=(4, 8), scale=1.0, stride=4.0, valid_hw=(1, 2))
    mask = np.zeros((4, 8), bool)
    mask[1:3, 1:3] = True  # the 4 pixels cell (0,0) samples: 128 -> (128 - 123.675) / 58.395 > 0
    mask[1:3, 5:7] = True
    mask[2, 6] = False  # cell (0,1): 3 of 4 -> raw 96 -> (96 - 123.675) / 58.395 < 0
    cells = matching.persam_cells(mask, feats)
    assert cells.tolist() == [[True, False], [False, False]]  # row 1 samples the padding (0, not > 0)
    # Cell (0,0) is a quarter covered: the coverage rule (half a cell) would not take it.
    assert float(matching.mask_to_grid(mask, feats)[0, 0]) == pytest.approx(0.25)


def test_persam_cells_padding_next_to_the_object_counts():
    # Sample between the last image row (object, 0.074) and the first padded row (0): mean 0.037 > 0.
    feats = Features(grid=torch.zeros(1, 2, 2), image_hw=(6, 8), scale=1.0, stride=4.0, valid_hw=(2, 2))
    mask = np.zeros((6, 8), bool)
    mask[5, 1:3] = True  # row 5 is the image's last; the sample at row 5.5 mixes it with padding
    assert matching.persam_cells(mask, feats).tolist() == [[False, False], [True, False]]


def test_persam_cells_resize_like_segment_anything():
    transforms = pytest.importorskip("segment_anything.utils.transforms")
    rng = np.random.default_rng(0)
    mask = np.zeros((37, 53), bool)
    mask[5:30, 10:41] = rng.random((25, 31)) > 0.2
    feats = Features(grid=torch.zeros(1, 8, 8), image_hw=(37, 53), scale=64 / 53, stride=8.0, valid_hw=(6, 8))
    # The official steps: PerSeg's RGB mask through SAM's resize, pixel normalisation, zero padding.
    rgb = np.zeros((37, 53, 3), np.uint8)
    rgb[mask] = (128, 0, 0)
    resized = transforms.ResizeLongestSide(64).apply_image(rgb)
    assert resized.shape[:2] == (45, 64)  # int(37 * 64 / 53 + 0.5)
    red = (torch.from_numpy(resized[..., 0].astype(np.float32)) - 123.675) / 58.395
    padded = torch.zeros(64, 64)
    padded[:45, :64] = red
    want = torch.nn.functional.interpolate(padded[None, None], size=(8, 8), mode="bilinear")[0, 0] > 0
    assert torch.equal(matching.persam_cells(mask, feats), want)


def test_upsample_official_is_x4_then_postprocess():
    # 16×32 image, no resize, stride 16: a 2×2 grid on a 32×32 input; the map rises left to right.
    feats = Features(grid=torch.zeros(1, 2, 2), image_hw=(16, 32), scale=1.0, stride=16.0, valid_hw=(1, 2))
    maps = torch.tensor([[[0.0, 1.0], [0.0, 1.0]]])
    up = matching.upsample_to_image(maps, feats, official=True)
    assert up.shape == (1, 16, 32)
    # ×4 (2 -> 8): x = clamp((j + 0.5) / 4 - 0.5) -> 0, 0, .125, .375, .625, .875, 1, 1.
    # 8 -> 32 at column 6: source 6.5 / 4 - 0.5 = 1.125 -> 0.875 * 0 + 0.125 * 0.125 = 0.015625;
    # column 8: source 1.625 -> 0.375 * 0 + 0.625 * 0.125 = 0.078125. Rows: all equal; unpad 32 -> 16.
    assert torch.allclose(up[0, :, 6], torch.full((16,), 0.015625))
    assert torch.allclose(up[0, :, 8], torch.full((16,), 0.078125))
    # One bilinear step instead: column 6 at source 6.5 / 16 - 0.5 < 0 -> 0; column 8 -> 0.03125.
    direct = matching.upsample_to_image(maps, feats)
    assert float(direct[0, 0, 6]) == pytest.approx(0.0) and float(direct[0, 0, 8]) == pytest.approx(0.03125)


def test_attention_bias_official_standardises_the_image_map_and_stretches_it_on_the_grid():
    image_map = torch.tensor([[0.0, 2.0, 4.0, 6.0], [1.0, 3.0, 5.0, 7.0]])  # values 0..7
    grid_map = torch.zeros(2, 2)
    bias = matching.attention_bias(grid_map, valid_hw=(1, 2), image_map=image_map)
    # mean 3.5, unbiased std sqrt(42 / 7) = sqrt(6); 4 -> 2 columns averages pairs (0,2), (4,6), ...
    std = math.sqrt(6.0)
    pairs = [[1.0, 5.0], [2.0, 6.0]]
    expected = [[1 / (1 + math.exp(-(v - 3.5) / std)) for v in row] for row in pairs]
    assert torch.allclose(bias, torch.tensor(expected), atol=1e-6)
    # The image covers the whole grid: the padded row is not pushed to the lowest value.
    assert float(bias[1].min()) > float(bias[0].min())


def test_tight_box_inclusive_end_is_the_last_pixel():
    m = np.zeros((10, 10), bool)
    m[2:5, 3:7] = True  # rows 2-4, columns 3-6
    assert matching.tight_box(m, inclusive=True) == (3.0, 2.0, 6.0, 4.0)


def test_attention_bias_official_on_a_flat_map_is_one_half_everywhere():
    bias = matching.attention_bias(torch.zeros(2, 2), image_map=torch.full((3, 5), 0.4))
    assert torch.allclose(bias, torch.full((2, 2), 0.5))  # sigmoid(0): no NaN from a zero std
