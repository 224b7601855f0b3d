"""PerSAM-F scale weights: formulas on hand-made tensors and recovery of a known mixture."""

from __future__ import annotations

import math

import pytest
import torch

from perovss_ros.core.errors import InvalidInputError
from perovss_ros.core.persam_f import (
    combine_logits,
    dice_loss,
    fit_scale_weights,
    mixture_loss,
    sigmoid_focal_loss,
)


def test_combine_logits_hand_computed() -> None:
    logits = torch.tensor([[[2.0, -4.0]], [[8.0, 0.0]], [[0.0, 4.0]]])  # 3×1×2
    got = combine_logits(logits, torch.tensor([0.5, 0.25, 0.25]))
    assert got.tolist() == [[1.0 + 2.0 + 0.0, -2.0 + 0.0 + 1.0]]
    batched = combine_logits(torch.stack([logits, 2 * logits]), torch.tensor([0.5, 0.25, 0.25]))
    assert batched.shape == (2, 1, 2) and batched[1].tolist() == [[6.0, -2.0]]
    with pytest.raises(InvalidInputError):
        combine_logits(torch.zeros(2, 4, 4), torch.ones(3))


def test_losses_hand_computed() -> None:
    logits = torch.zeros(1, 2)  # p = 0.5 everywhere
    target = torch.tensor([[1.0, 0.0]])
    # Dice: 1 - (2·0.5 + 1) / (1 + 1 + 1) = 1/3.
    assert float(dice_loss(logits, target)) == pytest.approx(1 / 3)
    # Focal: ce = ln 2, (1 - p_t)^2 = 1/4, alpha_t = 0.25 / 0.75 -> mean = 0.5 · ln 2 / 4.
    assert float(sigmoid_focal_loss(logits, target)) == pytest.approx(math.log(2) / 8)


def _three_masks(size: int = 48) -> torch.Tensor:
    """Three nested disc logits (small, medium, large) with noise: SAM's typical multimask output."""
    gen = torch.Generator().manual_seed(0)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    dist = ((yy - size / 2) ** 2 + (xx - size / 2) ** 2).float().sqrt()
    radii = (size * 0.15, size * 0.3, size * 0.45)
    return torch.stack([(r - dist) * 0.5 for r in radii]) + 0.5 * torch.randn(3, size, size, generator=gen)


@pytest.mark.parametrize("true_mask", [0, 1, 2])
def test_fit_recovers_the_matching_mask(true_mask: int) -> None:
    logits = _three_masks()
    target = logits[true_mask] > 0
    weights = fit_scale_weights(logits, target, iterations=300, lr=5e-3)
    assert weights.shape == (3,)
    assert float(weights.sum()) == pytest.approx(1.0, abs=1e-5)
    assert int(weights.argmax()) == true_mask
    start = mixture_loss(logits, target, torch.full((3,), 1 / 3))
    assert mixture_loss(logits, target, weights) < start


def test_fit_inside_inference_mode_and_bad_shapes() -> None:
    with torch.inference_mode():
        logits = _three_masks(16)
        weights = fit_scale_weights(logits, logits[1] > 0, iterations=20)
    assert torch.isfinite(weights).all()
    with pytest.raises(InvalidInputError, match="3×h×w"):
        fit_scale_weights(torch.zeros(2, 8, 8), torch.zeros(8, 8, dtype=torch.bool))
    with pytest.raises(InvalidInputError, match="match"):
        fit_scale_weights(torch.zeros(3, 8, 8), torch.zeros(8, 9, dtype=torch.bool))


def test_hand_written_gradient_matches_autograd() -> None:
    from perovss_ros.core.persam_f import _loss_and_grad, full_weights

    gen = torch.Generator().manual_seed(4)
    logits = 3 * torch.randn(3, 20, 20, generator=gen, dtype=torch.float64)
    target = (logits[1] > 0.5).double()
    w12 = torch.tensor([0.2, 0.5], dtype=torch.float64, requires_grad=True)
    mixed = combine_logits(logits, full_weights(w12))
    loss = dice_loss(mixed, target) + sigmoid_focal_loss(mixed, target)
    loss.backward()
    maps, flat_t = logits.numpy().reshape(3, -1), target.numpy().reshape(-1)
    value, grad = _loss_and_grad(w12.detach().numpy(), maps[2], maps[0] - maps[2], maps[1] - maps[2],
                                 flat_t, 0.25 * flat_t + 0.75 * (1 - flat_t))
    assert value == pytest.approx(float(loss.detach()), rel=1e-9)
    assert grad.tolist() == pytest.approx(w12.grad.tolist(), rel=1e-7)
