"""Fixtures of the core tests: hand-made teaching shots of a red striped square."""

from __future__ import annotations

import numpy as np
import pytest

from tests.core.images import BLUE, RED, background, put_square


@pytest.fixture(scope="session")
def red_shots() -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Three 160×120 teaching images of the red striped square at different places, and masks."""
    images, masks = [], []
    for i, (x, y) in enumerate([(20, 30), (80, 20), (50, 60)]):
        img, mask = put_square(background(seed=10 + i), x, y, 32, RED)
        images.append(img)
        masks.append(mask)
    return images, masks


@pytest.fixture(scope="session")
def blue_shots() -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Two teaching images of a blue striped square (the red one's same-shape look-alike)."""
    images, masks = [], []
    for i, (x, y) in enumerate([(30, 20), (90, 60)]):
        img, mask = put_square(background(seed=20 + i), x, y, 32, BLUE)
        images.append(img)
        masks.append(mask)
    return images, masks
