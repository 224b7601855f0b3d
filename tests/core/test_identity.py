"""Identity: negatives mined at teach time, candidates, outline check, touching look-alikes.

Frames are drawn by hand with the project's sprites on a plain textured background: "mine" is
a red striped mug; its look-alikes differ in exactly one attribute (colour, pattern, outline).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from perovss_ros.core import build_pipeline, matching
from perovss_ros.core.appearance import describe_region
from perovss_ros.core.decide import TRACKED_SLACK
from perovss_ros.core.errors import InvalidInputError, UnknownConceptError
from perovss_ros.core.identity import (
    HARD_WEIGHT,
    find_candidates,
    fit_identity_head,
    hard_negative_weights,
    recoloured,
)
from perovss_ros.core.shape import shape_distance, shape_signature, split_touching
from perovss_ros.sim.sprites import make_sprite, place
from tests.core.images import background, iou

W, H = 320, 240
RED, BLUE, WHITE = (200, 40, 40), (40, 60, 200), (235, 235, 235)
SPRITES = {
    "mine": make_sprite("mug", "stripes", RED, WHITE, 96),
    "colour": make_sprite("mug", "stripes", BLUE, WHITE, 96),
    "pattern": make_sprite("mug", "dots", RED, WHITE, 96),
    "shape": make_sprite("ball", "stripes", RED, WHITE, 96),
}
# A perfect look-alike: no appearance cue can tell it from mine, only where it has been.
SPRITES["twin"] = SPRITES["mine"]
# Mine's pattern on another outline: placed turned, its stripes run the other way.
SPRITES["box"] = make_sprite("box", "stripes", RED, WHITE, 96)


def frame(placements: dict[str, tuple[float, float, float]], seed: int = 0) -> tuple[np.ndarray, dict]:
    """A frame with sprites at ``name -> (x, y, angle)``; returns it and each sprite's visible mask."""
    canvas = background(H, W, seed=seed).astype(np.float32)
    labels = np.zeros((H, W), np.uint16)
    names = list(placements)
    for k, name in enumerate(names, start=1):
        x, y, angle = placements[name]
        place(canvas, labels, SPRITES[name], (x, y), 0.6, angle, k)
    masks = {name: labels == k for k, name in enumerate(names, start=1)}
    return np.clip(canvas, 0, 255).astype(np.uint8), masks


def teach_frames() -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Three teaching frames: mine with all three look-alikes beside it, in other places and angles."""
    layouts = [
        {"mine": (60, 60, 0), "colour": (250, 60, 30), "pattern": (60, 180, -40), "shape": (250, 180, 10)},
        {"mine": (250, 180, 60), "colour": (60, 180, 0), "pattern": (250, 60, 90), "shape": (60, 60, 45)},
        {"mine": (160, 120, -70), "colour": (60, 60, 120), "pattern": (260, 60, 0), "shape": (60, 190, -20)},
    ]
    images, masks = [], []
    for seed, layout in enumerate(layouts):
        img, m = frame(layout, seed=seed)
        images.append(img)
        masks.append(m["mine"])
    return images, masks


@pytest.fixture(scope="module")
def taught():
    pipe = build_pipeline({"backend": "classic", "concept_store": ""})
    images, masks = teach_frames()
    pipe.teach("mine", images, masks=masks)
    return pipe


def test_hard_negatives_are_the_cells_most_like_the_concept():
    target = torch.tensor([1.0, 0.0])
    # Twenty negatives at angles 0..95 degrees from the target: the two closest are the top tenth.
    angles = torch.deg2rad(torch.arange(20) * 5.0)
    negatives = torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)
    weights = hard_negative_weights(negatives, target)
    assert weights[:2].tolist() == [1.0 + HARD_WEIGHT] * 2
    assert weights[2:].tolist() == [1.0] * 18


def test_head_learns_what_the_mined_lookalike_is_not():
    images, masks = teach_frames()
    pipe = build_pipeline({"backend": "classic", "concept_store": ""})
    features = pipe.encoder.encode(images[0])
    _, look = frame({"mine": (60, 60, 0), "colour": (250, 60, 30), "pattern": (60, 180, -40),
                     "shape": (250, 180, 10)}, seed=0)
    from perovss_ros.core.matching import mask_to_grid

    cells = {name: mask_to_grid(m, features) >= 0.5 for name, m in look.items()}
    grid = torch.nn.functional.normalize(features.grid.permute(1, 2, 0).float(), dim=2)
    positives = grid[cells["mine"]]
    background_cells = mask_to_grid(masks[0], features) == 0
    negatives = grid[background_cells]
    weights = hard_negative_weights(negatives, positives.mean(0))
    # The mined hard negatives are the look-alikes' cells, not the plain background.
    hard = torch.zeros(background_cells.shape, dtype=torch.bool)
    hard[background_cells] = weights > 1.0
    lookalike_cells = cells["colour"] | cells["pattern"] | cells["shape"]
    assert int((hard & lookalike_cells).sum()) >= 0.6 * int(hard.sum())
    head = fit_identity_head(positives, negatives, weights)
    logits = head.logits(features.grid)
    assert float(logits[cells["mine"]].mean()) > 0
    assert float(logits[cells["colour"]].mean()) < 0 and float(logits[cells["pattern"]].mean()) < 0


@pytest.mark.parametrize("kind", ["colour", "pattern", "shape"])
def test_identity_picks_mine_over_a_single_attribute_lookalike(taught, kind):
    taught.reset_tracking()
    img, masks = frame({kind: (90, 130, 40), "mine": (230, 110, 20)}, seed=7)
    out = taught.process(img)
    assert [s.label for s in out.segments] == ["mine"]
    found = out.instance_mask == taught.concepts()[0].instance_id
    assert iou(found, masks["mine"]) > 0.6
    assert (found & masks[kind]).sum() < 0.05 * masks[kind].sum()


def test_judge_region_passes_mines_true_mask_and_turns_down_each_lookalikes(taught):
    img, masks = frame({"mine": (230, 110, 20), "colour": (90, 60, -30), "pattern": (90, 180, 60),
                        "shape": (250, 200, 0)}, seed=12)
    distance, limit = taught.judge_region("mine", img, masks["mine"])
    assert distance <= limit
    for kind in ("colour", "pattern", "shape"):
        distance, limit = taught.judge_region("mine", img, masks[kind])
        assert distance > limit, kind
    with pytest.raises(UnknownConceptError):
        taught.judge_region("not_taught", img, masks["mine"])
    with pytest.raises(InvalidInputError, match="but its image is"):
        taught.judge_region("mine", img, masks["mine"][:-1])
    with pytest.raises(InvalidInputError, match="empty"):
        taught.judge_region("mine", img, np.zeros_like(masks["mine"]))
    plain = build_pipeline({"backend": "classic", "concept_store": "", "identity": False})
    images, shots = teach_frames()
    plain.teach("mine", images, masks=shots)
    assert plain.judge_region("mine", img, masks["mine"]) is None  # no region check without identity


def test_lookalikes_alone_are_not_mine(taught):
    taught.reset_tracking()
    img, _ = frame({"colour": (70, 70, 100), "pattern": (250, 70, 20), "shape": (160, 180, 0)}, seed=8)
    out = taught.process(img)
    assert out.segments == []


def test_tracker_stays_on_mine_beside_a_touching_lookalike(taught):
    taught.reset_tracking()
    iid = taught.concepts()[0].instance_id
    found_on_mine = 0
    for step in range(5):
        # The same-outline, same-colour look-alike (another pattern) rides along, touching mine.
        x = 110 + 8 * step
        img, masks = frame({"mine": (x, 120, 5 * step), "pattern": (x + 50, 122, -5 * step)}, seed=9)
        assert np.logical_and(np.roll(masks["mine"], 2, axis=1), masks["pattern"]).any(), step
        found = taught.process(img).instance_mask == iid
        found_on_mine += iou(found, masks["mine"]) > 0.6
        # Never on the look-alike. A frame where the outline check drops mine (GrabCut loses the
        # thin handle and the mask looks like the ball) is a miss, not a switch: 2 of these 5
        # frames are missed today, a known weakness of the classic decoder's masks.
        assert (found & masks["pattern"]).sum() < 0.1 * masks["pattern"].sum(), step
    assert found_on_mine >= 3


def test_mask_is_cut_at_a_touching_lookalike(taught):
    taught.reset_tracking()
    img, masks = frame({"mine": (130, 120, 0), "shape": (180, 120, 0)}, seed=10)
    touching = np.logical_and(np.roll(masks["mine"], 2, axis=1), masks["shape"]).any()
    assert touching  # the scene is what the test says
    found = taught.process(img).instance_mask == taught.concepts()[0].instance_id
    assert iou(found, masks["mine"]) > 0.6
    assert (found & masks["shape"]).sum() < 0.1 * masks["shape"].sum()


def test_masks_do_not_depend_on_what_ran_before(tmp_path):
    images, masks = teach_frames()
    first = build_pipeline({"backend": "classic", "concept_store": str(tmp_path)})
    first.teach("mine", images, masks=masks)
    probe, _ = frame({"mine": (200, 100, 20), "shape": (80, 160, 0)}, seed=11)
    other, _ = frame({"colour": (100, 100, 0), "mine": (220, 160, 90)}, seed=12)
    first.reset_tracking()
    a = first.process(probe).instance_mask
    first.process(other)
    first.reset_tracking()
    b = first.process(probe).instance_mask
    reloaded = build_pipeline({"backend": "classic", "concept_store": str(tmp_path)})
    reloaded.load_store()
    c = reloaded.process(probe).instance_mask
    assert a.any() and np.array_equal(a, b) and np.array_equal(a, c)


def test_outline_signature_ignores_turns_and_size_but_not_shape():
    def sprite_mask(name: str, angle: float, scale: float) -> np.ndarray:
        canvas = np.zeros((H, W, 3), np.float32)
        labels = np.zeros((H, W), np.uint16)
        place(canvas, labels, SPRITES[name], (160, 120), scale, angle, 1)
        return labels == 1

    mug = shape_signature(sprite_mask("mine", 0, 0.8))[None]
    turned = shape_signature(sprite_mask("mine", 130, 0.6))
    ball = shape_signature(sprite_mask("shape", 0, 0.8))
    assert shape_distance(turned, mug) < 0.5 * shape_distance(ball, mug)


def test_touching_blobs_split_and_a_mug_does_not():
    yy, xx = np.mgrid[:H, :W]
    discs = ((xx - 110) ** 2 + (yy - 120) ** 2 < 40 ** 2) | ((xx - 186) ** 2 + (yy - 120) ** 2 < 40 ** 2)
    splits = split_touching(discs)
    assert splits and all(len(parts) == 2 for parts in splits)
    left, right = sorted(splits[0], key=lambda p: np.nonzero(p)[1].mean())
    assert left[120, 90] and right[120, 200] and not left[120, 200]
    canvas = np.zeros((H, W, 3), np.float32)
    labels = np.zeros((H, W), np.uint16)
    place(canvas, labels, SPRITES["mine"], (160, 120), 1.0, 0, 1)
    assert split_touching(labels == 1) == []


def test_candidates_are_positive_regions_best_first():
    logits = torch.full((6, 8), -2.0)
    logits[1:3, 1:3] = 1.0  # a 2×2 region of 1s
    logits[4, 6] = 3.0  # one strong cell
    cands = find_candidates(logits, (6, 8), cell_to_image=10.0, top_k=2, limit=4)
    assert len(cands) == 2
    # Top-2 over each region and its one-cell ring: the strong cell's ring holds only -2s.
    assert cands[0].score == pytest.approx(1.0) and cands[1].score == pytest.approx((3.0 - 2.0) / 2)
    assert cands[0].peak == (15.0, 15.0) and cands[1].peak == (65.0, 45.0)


def test_recoloured_turns_the_object_hue_only():
    img = np.zeros((4, 4, 3), np.uint8)
    img[:] = (200, 40, 40)
    img[0, 0] = (128, 128, 128)  # grey: no hue to turn
    mask = np.zeros((4, 4), bool)
    mask[:2] = True
    out = recoloured(img, mask, 120.0)
    assert (out[2:] == img[2:]).all() and (out[0, 0] == img[0, 0]).all()
    assert out[1, 1, 1] > 150 and out[1, 1, 0] < 60  # red turned to green


def test_a_region_with_two_separate_peaks_also_gives_its_parts():
    logits = torch.full((6, 12), -2.0)
    logits[1:5, 1:11] = 0.5  # one connected positive region ...
    logits[1:4, 1:4] = 4.0  # ... with a peak on the left
    logits[1:4, 7:10] = 3.5  # and one on the right, a valley of 0.5 between them
    cands = find_candidates(logits, (6, 12), cell_to_image=10.0, top_k=2, limit=8)
    sizes = sorted(int(c.cells.sum()) for c in cands)
    assert sizes[-1] == 40 and len(cands) == 3  # the whole region and its two parts
    left, right = (c for c in cands if c.cells.sum() < 40)
    assert left.cells[2, 2] and not left.cells[2, 8] and right.cells[2, 8] and not right.cells[2, 2]
    assert not (left.cells & right.cells).any() and ((left.cells | right.cells) == cands[0].cells).all()
    # A plateau with a bump too small to be a separate object stays one candidate.
    flat = torch.full((6, 12), -2.0)
    flat[1:5, 1:11] = 1.0
    flat[2, 3] = 1.3
    assert len(find_candidates(flat, (6, 12), cell_to_image=10.0, top_k=2, limit=8)) == 1


def test_a_twin_seen_beside_mine_is_not_taken_for_mine_when_mine_leaves(taught):
    iid = taught.concepts()[0].instance_id
    taught.reset_tracking()
    # Alone, the twin is taken for mine: appearance cannot tell them apart.
    img, masks = frame({"twin": (240, 130, 10)}, seed=11)
    alone = taught.process(img).instance_mask == iid
    assert iou(alone, masks["twin"]) > 0.6
    taught.reset_tracking()
    for step in range(3):  # mine alone, followed
        img, masks = frame({"mine": (80 + 4 * step, 120, 3 * step)}, seed=11)
        assert iou(taught.process(img).instance_mask == iid, masks["mine"]) > 0.6, step
    for step in range(3):  # the twin comes into view beside mine, which stays plainly found
        img, masks = frame({"mine": (92 + 4 * step, 120, 9 + 3 * step), "twin": (240, 130 - 3 * step, 10 + 4 * step)},
                           seed=11)
        found = taught.process(img).instance_mask == iid
        assert iou(found, masks["mine"]) > 0.6 and not (found & masks["twin"]).any(), step
    for step in range(3):  # mine leaves; the twin stays in view
        img, masks = frame({"twin": (240, 121 - 3 * step, 22 + 4 * step)}, seed=11)
        assert taught.process(img).segments == [], step
    # Mine comes back elsewhere: found again, the twin still not.
    img, masks = frame({"mine": (80, 120, 0), "twin": (240, 112, 34)}, seed=11)
    found = taught.process(img).instance_mask == iid
    assert iou(found, masks["mine"]) > 0.6 and not (found & masks["twin"]).any()
    # After a reset nothing is remembered: the twin alone is taken for mine again.
    taught.reset_tracking()
    img, masks = frame({"twin": (240, 112, 34)}, seed=11)
    assert iou(taught.process(img).instance_mask == iid, masks["twin"]) > 0.6


def _mine_turned_score(turned_shots: bool) -> tuple[float, float]:
    """Teach mine from one frame where a box with its stripes at right angles to mine's stands beside it;
    return the head's best score over mine turned by 90 degrees in a new frame, and that frame's IoU."""
    pipe = build_pipeline({"backend": "classic", "concept_store": "", "turned_shots": turned_shots})
    img, masks = frame({"mine": (80, 120, 0), "box": (240, 120, 90)}, seed=3)
    pipe.teach("mine", [img], masks=[masks["mine"]])
    concept = pipe._concepts["mine"]
    img, masks = frame({"mine": (160, 120, 90)}, seed=5)
    grid = pipe.encoder.encode(img)
    logits = concept.identity.head.logits(grid.grid).numpy()
    cells = matching.mask_to_grid(masks["mine"], grid).numpy() >= 0.5
    found = pipe.process(img).instance_mask == concept.instance_id
    return float(np.sort(logits[cells])[::-1][:4].mean()), iou(found, masks["mine"])


def test_turned_shots_keep_the_direction_of_a_pattern_from_deciding_identity():
    # Taught beside a box whose stripes run the other way, the head learns the direction of the stripes
    # unless the shots are also learnt turned: mine turned then scores like a look-alike.
    with_turns, found = _mine_turned_score(True)
    without_turns, _ = _mine_turned_score(False)
    assert with_turns > 0.0 and found > 0.6
    assert with_turns > without_turns + 0.5


def test_two_regions_that_fit_equally_start_no_track_until_one_is_followed(taught):
    iid = taught.concepts()[0].instance_id
    taught.reset_tracking()
    # Mine and its perfect twin first seen together: nothing tells them apart, so neither is taken ...
    img, masks = frame({"mine": (80, 120, 0), "twin": (240, 130, 10)}, seed=12)
    assert taught.process(img).segments == []
    # ... while mine alone is found, and once followed it is kept with the twin beside it.
    taught.reset_tracking()
    img, masks = frame({"mine": (80, 120, 0)}, seed=12)
    assert iou(taught.process(img).instance_mask == iid, masks["mine"]) > 0.6
    img, masks = frame({"mine": (84, 120, 4), "twin": (240, 130, 10)}, seed=12)
    found = taught.process(img).instance_mask == iid
    assert iou(found, masks["mine"]) > 0.6 and not (found & masks["twin"]).any()


def test_a_coasting_track_is_continued_only_at_its_predicted_box():
    from perovss_ros.core.decide import _continues
    from perovss_ros.core.identity import Candidate
    from perovss_ros.core.tracker import TrackPrompt

    window = np.zeros((30, 40), bool)  # 8 px cells: the track's widened window, x 80..220, y 80..170
    window[10:22, 10:28] = True

    def candidate(x: float, y: float) -> Candidate:
        cells = np.zeros_like(window)
        cells[int(y // 8) - 2:int(y // 8) + 2, int(x // 8) - 2:int(x // 8) + 2] = True
        return Candidate(cells=cells, peak=(x, y), score=1.0)

    at, beside = candidate(150, 125), candidate(212, 125)  # on the prediction / in the window beside it
    seen = TrackPrompt(box=(80, 80, 220, 170), centre=(150, 125), predicted=(100, 100, 200, 150), missed=0)
    coasting = seen._replace(missed=2)
    assert _continues(at, window, seen) and _continues(beside, window, seen)
    assert _continues(at, window, coasting) and not _continues(beside, window, coasting)
    assert not _continues(candidate(300, 40), window, seen)  # outside the window altogether


def test_the_tracks_own_box_is_a_candidate_where_the_head_found_none_at_its_prediction():
    from perovss_ros.core.decide import plan_candidates, track_candidate
    from perovss_ros.core.identity import Candidate, region_score
    from perovss_ros.core.tracker import TrackPrompt
    from perovss_ros.core.types import Features

    # 8 px cells over a 320×240 image; the predicted box x 100..200, y 100..150 covers cells
    # rows 12..18 and columns 12..24.
    features = Features(grid=torch.zeros(1, 30, 40), image_hw=(240, 320), scale=1.0, stride=8.0, valid_hw=(30, 40))
    logits = torch.full((30, 40), -3.0)
    logits[16, 18] = -1.0  # the head's best cell in the box: still negative
    logits[5, 35] = 2.0  # and a strong region far off
    track = TrackPrompt(box=(80, 80, 220, 170), centre=(150, 125), predicted=(100, 100, 200, 150), missed=1)
    at_track = track_candidate(logits, features, track, top_k=2, distractors=[])
    assert at_track is not None and at_track.at_track
    expected = np.zeros((30, 40), bool)
    expected[12:19, 12:25] = True
    assert np.array_equal(at_track.cells, expected)
    assert at_track.peak == ((18 + 0.5) * 8, (16 + 0.5) * 8)
    assert at_track.score == pytest.approx(region_score(logits.numpy(), expected, 2))
    # None where a distractor reaches the box, or with no predicted box.
    distractor = np.zeros((30, 40), bool)
    distractor[18:22, 24:28] = True
    assert track_candidate(logits, features, track, top_k=2, distractors=[distractor]) is None
    assert track_candidate(logits, features, track._replace(predicted=None), top_k=2, distractors=[]) is None

    window = np.zeros((30, 40), bool)
    window[10:22, 10:28] = True

    def candidate(x: float, y: float) -> Candidate:
        cells = np.zeros((30, 40), bool)
        cells[int(y // 8) - 2:int(y // 8) + 2, int(x // 8) - 2:int(x // 8) + 2] = True
        return Candidate(cells=cells, peak=(x, y), score=1.0)

    far, beside, at = candidate(290, 40), candidate(212, 125), candidate(150, 125)
    seen = track._replace(missed=0)
    # Something beside the prediction continues the track; the track's box is tried right after it.
    plan, tracked = plan_candidates([far, beside], seen, window, at_track)
    assert tracked is beside and plan == [beside, at_track, far]
    # No eligible candidate near the track at all: the box comes first.
    plan, tracked = plan_candidates([far], seen, window, at_track)
    assert tracked is None and plan == [at_track, far]
    # A candidate with its peak in the predicted box: the head found the object there, no box needed.
    plan, tracked = plan_candidates([at, far], seen, window, at_track)
    assert tracked is at and plan == [at, far]
    assert plan_candidates([], None, None, None) == ([], None)


def test_head_support_cuts_off_what_the_head_does_not_take_for_the_concept():
    from perovss_ros.core.decide import head_support

    yy, xx = np.mgrid[:120, :160]
    disc = (yy - 60) ** 2 + (xx - 60) ** 2 <= 35 ** 2
    strip = (xx >= 95) & (xx < 115) & (yy >= 20) & (yy < 100)  # a dark strip the decode took in, touching it
    logits = torch.where(torch.from_numpy(disc), 2.0, -2.0)
    part = head_support(disc | strip, logits)
    assert part is not None and iou(part, disc) > 0.95 and not (part & strip & ~disc).any()
    assert head_support(disc, logits) is None  # nothing to cut off
    assert head_support(strip & ~disc, logits) is None  # none of it is the concept's
    assert head_support(np.zeros_like(disc), logits) is None


def test_a_mask_touches_the_border_when_any_edge_pixel_is_in_it():
    from perovss_ros.core.appearance import touches_border

    mask = np.zeros((40, 60), bool)
    mask[10:20, 10:20] = True
    assert not touches_border(mask)
    for edge in ((0, 15), (39, 15), (15, 0), (15, 59)):
        edged = mask.copy()
        edged[edge] = True
        assert touches_border(edged)


def warmer(rgb: np.ndarray) -> np.ndarray:
    """``rgb`` under a warmer light: green and blue dimmed (no channel clips)."""
    return np.clip(rgb.astype(np.float32) * np.array([1.0, 0.88, 0.7], np.float32), 0, 255).astype(np.uint8)


def test_mine_is_found_under_a_warmer_light_and_its_colour_lookalike_is_not(taught):
    # Taught under a neutral light; a lamp then moves every pixel's red/blue balance, mine's colour with it.
    taught.reset_tracking()
    img, masks = frame({"colour": (90, 130, 40), "mine": (230, 110, 20)}, seed=9)
    out = taught.process(warmer(img))
    assert [s.label for s in out.segments] == ["mine"]
    found = out.instance_mask == taught.concepts()[0].instance_id
    assert iou(found, masks["mine"]) > 0.6
    assert (found & masks["colour"]).sum() < 0.05 * masks["colour"].sum()
    taught.reset_tracking()
    alone, _ = frame({"colour": (160, 120, 30), "pattern": (60, 60, 0)}, seed=10)
    assert taught.process(warmer(alone)).segments == []
    # With the correction off the same warmed frame loses mine: its colour is too far from the shots'.
    plain = build_pipeline({"backend": "classic", "concept_store": "", "light_correction": False})
    plain.teach("mine", *teach_frames())
    assert plain.process(img).segments and plain.process(warmer(img)).segments == []


def test_the_lookalikes_decoded_at_teach_time_are_kept_as_negatives(taught):
    cues = taught._concepts["mine"].identity.cues
    assert 3 <= len(cues.negatives) <= 8
    # In a new frame the pattern and shape look-alikes, which the head does not rule out, are nearer what
    # the concept was taught it is not than its shots are; mine is nearer its shots than any of them. (The
    # head rules the colour look-alike out already, so it is no calibration candidate, and its colour
    # alone puts it beyond any limit.)
    img, masks = frame({"mine": (90, 70, 130), "colour": (240, 70, -30), "pattern": (80, 180, 75),
                        "shape": (240, 180, 200)}, seed=21)
    described = {name: describe_region(img, m) for name, m in masks.items()}
    for kind in ("pattern", "shape"):
        assert cues.negative_distance(described[kind]) < cues.distance(described[kind]), kind
    assert cues.distance(described["mine"]) < cues.negative_distance(described["mine"])
    assert cues.distance(described["colour"]) > TRACKED_SLACK * cues.accept


def test_the_decoders_masks_of_the_turned_shots_are_references_too(taught):
    # The decoder's habits differ with the angle (GrabCut loses a thin handle at some angles): its masks
    # of the turned shots join the references, so the region check knows them. Off with turned_shots.
    images, masks = teach_frames()
    plain = build_pipeline({"backend": "classic", "concept_store": "", "turned_shots": False})
    plain.teach("mine", images, masks=masks)
    with_turns = taught._concepts["mine"].identity.cues.references
    without = plain._concepts["mine"].identity.cues.references
    assert len(without) <= 2 * len(images)  # the shots and the decoder's masks of them
    # At least one decode per shot's three turns counts (IoU >= 0.8 with the turned mask), at most all.
    assert len(without) + len(images) <= len(with_turns) <= len(without) + 3 * len(images)


def test_a_tracked_mask_inside_its_last_mask_and_smaller_is_the_object_partly_hidden():
    from perovss_ros.core.decide import continues_last_mask, last_mask_of, partly_hidden
    from perovss_ros.core.tracker import TrackPrompt

    last = np.zeros((240, 320), bool)
    last[100:160, 100:180] = True  # the object where the track expects it (4800 px)
    track = TrackPrompt(box=(90, 90, 190, 170), centre=(140, 130), predicted=(100, 100, 180, 160), last_mask=last)
    on, no_mask = last_mask_of(track), last_mask_of(track._replace(last_mask=None))
    assert no_mask is None
    hidden = last.copy()
    hidden[:, 140:150] = False  # a pole in front: 4200 px, all inside
    assert partly_hidden(hidden, on)
    assert partly_hidden(np.roll(hidden, 6, axis=1), on)  # moved a little further than predicted
    assert not partly_hidden(last, on)  # whole: its outline is its own
    spill = last.copy()
    spill[:, 130:160] = False
    spill[120:140, 180:220] = True  # more hidden, but a neighbour taken in: 3800 px, 700 beyond reach
    assert not partly_hidden(spill, on)
    beside = np.zeros_like(last)
    beside[100:160, 200:260] = True  # a look-alike beside the object
    assert not partly_hidden(beside, on)
    assert not partly_hidden(hidden, no_mask)
    # Continuing the track at all takes half the mask on the last one: the spill does, the
    # look-alike beside does not; a track seeded from a box (no last mask) takes any mask.
    assert continues_last_mask(hidden, on) and continues_last_mask(spill, on)
    assert not continues_last_mask(beside, on)
    assert continues_last_mask(beside, no_mask)


def test_the_tracked_candidate_is_the_one_on_the_objects_last_mask():
    from perovss_ros.core.decide import plan_candidates
    from perovss_ros.core.identity import Candidate
    from perovss_ros.core.tracker import TrackPrompt

    window = np.zeros((30, 40), bool)  # 8 px cells: the track's window
    window[10:22, 10:28] = True

    def candidate(cols: slice, score: float) -> Candidate:
        cells = np.zeros_like(window)
        cells[12:20, cols] = True
        return Candidate(cells=cells, peak=((cols.start + 2) * 8.0, 16 * 8.0), score=score)

    beside, mine = candidate(slice(22, 28), 3.0), candidate(slice(12, 18), 2.0)  # both touch the window
    last = np.zeros_like(window)
    last[12:20, 12:17] = True  # where the object was last found, moved on
    track = TrackPrompt(box=(80, 80, 224, 176), centre=(150, 125), predicted=(96, 96, 208, 160))
    plan, tracked = plan_candidates([beside, mine], track, window, None, last)
    assert tracked is mine and plan == [mine, beside]
    # Without a last mask the head's order decides, as before.
    plan, tracked = plan_candidates([beside, mine], track, window, None)
    assert tracked is beside and plan == [beside, mine]


def test_a_distractor_carried_onto_mine_where_the_track_expects_it_is_released(taught):
    from perovss_ros.core.distractors import Distractor

    iid = taught.concepts()[0].instance_id
    taught.reset_tracking()
    for step in range(3):  # mine alone, followed
        img, masks = frame({"mine": (100 + 4 * step, 120, 3 * step)}, seed=12)
        assert iou(taught.process(img).instance_mask == iid, masks["mine"]) > 0.6, step
    # A distractor that a look-alike passing over mine had carried onto it: its cells are mine's.
    features = taught.encoder.encode(img)
    cells = matching.mask_to_grid(masks["mine"], features).numpy() >= 0.5
    memory = taught._distractors["mine"]
    memory.items = [Distractor(cells.copy())]
    # Mine where the track expects it, plainly itself: found although the distractor marks it, and the
    # distractor is dropped.
    img, masks = frame({"mine": (116, 120, 9)}, seed=12)
    assert iou(taught.process(img).instance_mask == iid, masks["mine"]) > 0.6
    assert memory.items == []
