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
