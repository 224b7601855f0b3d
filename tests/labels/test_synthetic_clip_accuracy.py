"""The full synthetic-clip names sprite shapes far better than chance on held-out renders, and leaves
unknown shapes unlabelled.

Builds the standard recipe into the model directory once (cached there; about 3
minutes on 2 free cores, longer on a loaded machine) and labels sprites drawn
from another seed than training, placed on textured frames, through the labeller.
"""

from __future__ import annotations

import numpy as np
import pytest

from perovss_ros.core.labels import RegionLabeller, synthetic_clip
from perovss_ros.core.labels.synthetic_world import background, random_object
from perovss_ros.sim.sprites import SHAPES, place

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

HELD_OUT_SEED = 20261202
CHANCE = 1.0 / len(SHAPES)


def held_out_renders(count: int, unknown_rate: float) -> list[tuple[np.ndarray, np.ndarray, str]]:
    """``(240×240×3 uint8 RGB frame, bool mask, shape)`` never seen in training; shape ``object`` = unknown."""
    rng = np.random.default_rng(HELD_OUT_SEED)
    out = []
    while len(out) < count:
        frame = background(rng, 240)
        sprite, attrs = random_object(rng, 96, unknown_rate=unknown_rate)
        labels = np.zeros((240, 240), np.uint16)
        centre = (rng.uniform(60, 180), rng.uniform(60, 180))
        place(frame, labels, sprite, centre, rng.uniform(0.5, 1.0), rng.uniform(-20, 20), 1)
        out.append((np.clip(frame, 0, 255).astype(np.uint8), labels == 1, attrs.shape))
    return out


@pytest.fixture(scope="module")
def labeller() -> RegionLabeller:
    synthetic_clip.build()
    return RegionLabeller(synthetic_clip.synthetic_clip_encoder(), vocabulary=list(SHAPES))


def test_names_shapes_far_better_than_chance(labeller: RegionLabeller) -> None:
    renders = held_out_renders(100, unknown_rate=0.0)
    answers = [labeller.label(frame, [mask])[0] for frame, mask, _ in renders]
    nearest = np.mean([a.nearest == shape for a, (_, _, shape) in zip(answers, renders, strict=True)])
    accepted = np.mean([a.label == shape for a, (_, _, shape) in zip(answers, renders, strict=True)])
    # Measured 1.00 and 1.00 when written; chance is 0.2.
    assert nearest >= 0.8, f"nearest-shape accuracy {nearest:.2f} on held-out renders (chance {CHANCE:.2f})"
    assert accepted >= 0.7, f"only {accepted:.2f} of known shapes got their word past the null class"


def test_unknown_shapes_stay_unlabelled(labeller: RegionLabeller) -> None:
    renders = [r for r in held_out_renders(60, unknown_rate=0.5) if r[2] == "object"]
    unlabelled = np.mean([labeller.label(frame, [mask])[0].label is None for frame, mask, _ in renders])
    assert len(renders) >= 15
    assert unlabelled >= 0.7, f"only {unlabelled:.2f} of unknown shapes were left unlabelled"


def test_category_of_a_taught_sprite_is_inferred(labeller: RegionLabeller) -> None:
    # Three shots of one sprite in different poses and frames, as a teach would give.
    rng = np.random.default_rng(HELD_OUT_SEED + 1)
    right = 0
    for _ in range(10):
        sprite, attrs = random_object(rng, 96, unknown_rate=0.0)
        images, masks = [], []
        for _ in range(3):
            frame = background(rng, 240)
            labels = np.zeros((240, 240), np.uint16)
            place(frame, labels, sprite, (rng.uniform(70, 170), rng.uniform(70, 170)), rng.uniform(0.6, 1.0),
                  rng.uniform(-20, 20), 1)
            images.append(np.clip(frame, 0, 255).astype(np.uint8))
            masks.append(labels == 1)
        right += labeller.infer_category(images, masks).label == attrs.shape
    assert right >= 8, f"category inferred for {right} of 10 taught sprites"
