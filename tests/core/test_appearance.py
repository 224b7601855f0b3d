"""Region cues: colour, pattern and outline of a mask, their invariances, and the calibrated weights.

Objects are the project's sprites drawn by hand (``tests/core/test_identity.py``): "mine" is a red
striped mug, each look-alike differs from it in exactly one attribute.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from perovss_ros.core.appearance import (
    CUE_FLOORS,
    CUES,
    CueCheck,
    RegionDescriptor,
    _palette_cells,
    colour_histogram,
    colour_support,
    cue_distances,
    cue_scale,
    cue_weights,
    describe_region,
    hellinger,
    palette_support,
    shot_views,
)
from perovss_ros.core.decide import NEARER_SLACK, TRACKED_SLACK, _best_option, acceptance_limit
from perovss_ros.core.shape import cut_reference, silhouette
from tests.core.images import iou
from tests.core.test_identity import frame, teach_frames


def test_each_lookalike_lies_far_off_in_the_cue_it_differs_in():
    images, masks = teach_frames()
    references = [describe_region(img, m) for img, m in zip(images, masks, strict=True)]
    img, found = frame({"mine": (90, 70, 130), "colour": (240, 70, -30), "pattern": (80, 180, 75),
                        "shape": (240, 180, 200)}, seed=21)
    units = {name: cue_distances(describe_region(img, m), references) / CUE_FLOORS for name, m in found.items()}
    for kind, cue in (("colour", "colour"), ("pattern", "pattern"), ("shape", "outline")):
        c = CUES.index(cue)
        assert units[kind][c] > 2.0 * units["mine"][c] + 1.0, (kind, units[kind], units["mine"])
        assert units[kind].sum() > units["mine"].sum(), kind


def test_colour_ignores_light_intensity_but_not_hue():
    images, masks = teach_frames()
    img, mask = images[0], masks[0]
    base = colour_histogram(img, mask)
    darker = colour_histogram(np.clip(img.astype(np.float32) * 0.8, 0, 255).astype(np.uint8), mask)
    other_hue = colour_histogram(img[..., ::-1].copy(), mask)  # red <-> blue
    assert hellinger(base, darker) < 0.1
    assert hellinger(base, other_hue) > 3 * hellinger(base, darker) + 0.2


def test_pattern_and_outline_ignore_a_turn_and_a_smaller_size():
    upright, a = frame({"mine": (160, 120, 0)}, seed=3)
    turned, b = frame({"mine": (160, 120, 110)}, seed=4)
    dotted, c = frame({"pattern": (160, 120, 0)}, seed=5)
    ref = describe_region(upright, a["mine"])
    same = cue_distances(describe_region(turned, b["mine"]), [ref])
    other = cue_distances(describe_region(dotted, c["pattern"]), [ref])
    p, o = CUES.index("pattern"), CUES.index("outline")
    assert same[p] < 0.5 * other[p]
    assert same[o] < 2 * CUE_FLOORS[o]


def test_cue_scale_is_the_shots_spread_within_its_bounds():
    images, masks = teach_frames()
    shots = [(i, describe_region(img, m)) for i, (img, m) in enumerate(zip(images, masks, strict=True))]
    scale = cue_scale(shots)
    assert (scale >= CUE_FLOORS).all() and (scale <= 2.5 * CUE_FLOORS + 1e-12).all()
    # One shot alone has no spread: the floors.
    assert np.array_equal(cue_scale(shots[:1]), CUE_FLOORS)


def test_a_close_lookalike_raises_the_weight_of_the_cue_that_separates_it():
    own = [np.array([0.5, 0.5, 0.5])]
    # Near on colour and pattern, off on the outline: summed 0.2 + 0.3 + 2.0 = 2.5 < 1.5 × 4.
    weights = cue_weights(own, [np.array([0.2, 0.3, 2.0])], accept=4.0)
    assert weights[:2].tolist() == [1.0, 1.0]
    assert weights[2] == pytest.approx((1.5 * 4.0 - 0.5) / 2.0)
    # A look-alike already far enough changes nothing; the raise is capped.
    assert cue_weights(own, [np.array([7.0, 0.0, 0.0])], accept=4.0).tolist() == [1.0, 1.0, 1.0]
    assert cue_weights(own, [np.array([0.0, 0.0, 0.1])], accept=4.0)[2] == pytest.approx(3.0)


def test_a_mask_cut_by_the_border_keeps_its_outline_only_when_trusted():
    images, masks = teach_frames()
    references = tuple(describe_region(img, m) for img, m in zip(images, masks, strict=True))
    cues = CueCheck(references=references, scale=CUE_FLOORS.copy(), accept=4.5)
    # The ball (another outline) pushed half out of view on the left.
    img, found = frame({"shape": (10, 120, 0)}, seed=6)
    desc = describe_region(img, found["shape"])
    assert desc.cut
    units = cues.cue_units(desc)
    trusted = cues.distance(desc)
    followed = cues.distance(desc, trust_cut_outline=False)
    assert trusted == pytest.approx(units.sum())
    assert followed == pytest.approx(units.sum() - units[CUES.index("outline")])
    whole, found = frame({"shape": (160, 120, 0)}, seed=6)
    inside = describe_region(whole, found["shape"])
    assert not inside.cut and cues.distance(inside, trust_cut_outline=False) == pytest.approx(cues.distance(inside))


def _references():
    images, masks = teach_frames()
    return tuple(describe_region(img, m) for img, m in zip(images, masks, strict=True))


def _support(references):
    return palette_support([r.palette for r in references])


def test_colour_support_cuts_a_spill_onto_a_touching_thing_of_another_colour():
    references = _references()
    # Mine with the blue look-alike touching it: a decode that spilled over both.
    img, found = frame({"mine": (120, 120, 0), "colour": (190, 120, 0)}, seed=8)
    both = found["mine"] | found["colour"]
    part = colour_support(img, both, _support(references))
    assert part is not None
    assert iou(part, found["mine"]) > 0.85
    assert not (part & found["colour"]).sum() > 0.05 * found["colour"].sum()
    cues = CueCheck(references=references, scale=CUE_FLOORS.copy(), accept=4.5)
    assert cues.distance(describe_region(img, part)) < 0.5 * cues.distance(describe_region(img, both))


def test_colour_support_tells_dark_stripes_from_a_grey_surface_of_their_chromaticity():
    references = _references()
    img, found = frame({"mine": (120, 120, 0)}, seed=9)
    ys, xs = np.nonzero(found["mine"])
    # A neutral grey strip beside the mug: the chromaticity of its white stripes' shadows, another brightness.
    strip = np.zeros_like(found["mine"])
    strip[ys.min():ys.max(), xs.max() + 1:xs.max() + 25] = True
    img = img.copy()
    img[strip] = (70, 70, 70)
    part = colour_support(img, found["mine"] | strip, _support(references))
    assert part is not None and iou(part, found["mine"]) > 0.85


def test_colour_support_cuts_a_spill_of_a_few_per_cent():
    references = _references()
    img, found = frame({"mine": (120, 120, 0)}, seed=9)
    ys, xs = np.nonzero(found["mine"])
    # A green strip beside the mug, about 5 % of the mask: enough to move the colour cue of a concept
    # whose colour tells it from a look-alike (weighed up ×3), too little for the noise of the opening.
    width = max(2, round(0.05 * found["mine"].sum() / (ys.max() - ys.min())))
    strip = np.zeros_like(found["mine"])
    strip[ys.min():ys.max(), xs.max() + 1:xs.max() + 1 + width] = True
    img = img.copy()
    img[strip] = (40, 170, 60)
    spilled = found["mine"] | strip
    assert 0.03 < strip.sum() / spilled.sum() < 0.08
    part = colour_support(img, spilled, _support(references))
    assert part is not None and iou(part, found["mine"]) > 0.95
    assert (part & strip).sum() < 0.2 * strip.sum()


def test_the_concepts_colours_come_from_its_shots_not_from_a_decode_that_took_in_background():
    images, masks = teach_frames()
    shots = tuple(describe_region(img, m) for img, m in zip(images, masks, strict=True))
    silhouettes, views = shot_views(images, masks)
    # A decode of the first shot that also took in a block of green background beside the object (as one
    # at IoU >= 0.8 with its shot still counts as a reference of the region check).
    ys, xs = np.nonzero(masks[0])
    block = np.zeros_like(masks[0])
    block[ys.min():ys.max(), xs.max() + 1:xs.max() + 1 + max(4, (xs.max() - xs.min()) // 4)] = True
    beside = images[0].copy()
    beside[block] = (40, 170, 60)  # a green the object does not have
    stray = describe_region(beside, masks[0] | block)
    background = beside[block].astype(np.float32)

    def shown(support: np.ndarray) -> float:
        cells, lit = _palette_cells(background)
        return float((~lit | support[cells[:, 0], cells[:, 1], cells[:, 2]]).mean())

    assert shown(_support((*shots, stray))) > 0.5, "the stray decode's background is in its palette"
    cues = CueCheck(references=(*shots, stray), scale=CUE_FLOORS.copy(), accept=4.5, silhouettes=silhouettes,
                    views=views)
    assert shown(cues.support) < 0.1
    assert np.array_equal(cues.support, _support(shots)), "the shots' own pixels, rim left out as in their descriptions"
    # Where no views are kept the references' palettes are all there is.
    assert np.array_equal(CueCheck(references=shots, scale=CUE_FLOORS.copy(), accept=4.5).support, _support(shots))


def test_colour_support_leaves_the_object_alone_and_finds_nothing_of_it_in_another_colour():
    references = _references()
    img, found = frame({"mine": (90, 120, 30), "colour": (240, 120, 0)}, seed=10)
    assert colour_support(img, found["mine"], _support(references)) is None  # nothing to cut off
    assert colour_support(img, found["colour"], _support(references)) is None  # none of it is mine


def test_the_region_check_scores_the_colour_supported_part_of_a_spilled_mask():
    references = _references()
    cues = CueCheck(references=references, scale=CUE_FLOORS.copy(), accept=4.5)
    img, found = frame({"mine": (120, 120, 0), "colour": (190, 120, 0)}, seed=8)
    both = found["mine"] | found["colour"]
    flat = torch.zeros(img.shape[:2])
    option, distance, _, _, _ = _best_option(both, img, cues, flat)
    assert iou(option, found["mine"]) > 0.85
    assert distance < cues.accept


def _cut_cues(**extra) -> CueCheck:
    """Cues of the teach shots where the outline tells look-alikes apart (weight 3, as ``cue_weights``
    gives after a shape look-alike) and a scale twice the floors (shots that differ a little)."""
    return CueCheck(references=_references(), scale=2 * CUE_FLOORS, accept=4.5, weights=np.array([1.0, 1.0, 3.0]),
                    **extra)


@pytest.mark.parametrize("place", [(5, 120, 180), (2, 120, 90), (315, 120, 270), (160, 236, -30)])
def test_a_border_cut_object_is_measured_against_a_shot_cut_the_same_way(place):
    images, masks = teach_frames()
    silhouettes, views = shot_views(images, masks)
    img, found = frame({"mine": place}, seed=6)
    mine = found["mine"]
    flat = torch.zeros(img.shape[:2])
    # Against the whole shots, the part in view has another outline: turned down.
    _, whole, desc, whole_units, _ = _best_option(mine, img, _cut_cues(), flat)
    assert desc.cut and whole > 4.5
    # Against a shot placed over it and cut by the same border, it is the concept: the outline alone
    # (without the shots' images) and with the placed shot's colour and pattern too.
    placement = cut_reference(mine, silhouettes)
    assert placement.iou > 0.85 and iou(placement.mask, mine) == pytest.approx(placement.iou)
    outline = CUES.index("outline")
    for extra in ({"silhouettes": silhouettes}, {"silhouettes": silhouettes, "views": views}):
        _, distance, _, units, _ = _best_option(mine, img, _cut_cues(**extra), flat)
        assert distance <= 4.5 < whole
        assert units[outline] < 0.3 * whole_units[outline]


def test_a_border_cut_lookalike_of_another_colour_stays_turned_down():
    images, masks = teach_frames()
    cues = _cut_cues(**dict(zip(("silhouettes", "views"), shot_views(images, masks), strict=True)))
    img, found = frame({"colour": (5, 120, 180)}, seed=6)
    flat = torch.zeros(img.shape[:2])
    _, distance, desc, units, _ = _best_option(found["colour"], img, cues, flat)
    assert desc.cut and distance > 4.5
    assert units[CUES.index("colour")] > 4.5


def test_a_cut_mask_that_a_lookalike_fits_as_well_keeps_its_whole_outline_check():
    images, masks = teach_frames()
    silhouettes, views = shot_views(images, masks)
    img, found = frame({"mine": (5, 120, 180)}, seed=6)
    mine = found["mine"]
    desc = describe_region(img, mine)
    outline = CUES.index("outline")
    whole = _cut_cues().weighted_units(desc)[outline]
    _, ball = frame({"shape": (160, 120, 0)}, seed=1)
    # A ball seen at teach time fits the half mug worse than a shot does: the cut outline counts.
    other = _cut_cues(silhouettes=silhouettes, views=views, rivals=(silhouette(ball["shape"]),))
    assert other.cut_units(desc, mine)[outline] < 0.3 * whole
    flat = torch.zeros(img.shape[:2])
    assert _best_option(mine, img, other, flat)[1] <= 4.5
    # A look-alike of the very same outline fits as well: the part in view cannot tell them apart.
    twin = _cut_cues(silhouettes=silhouettes, views=views, rivals=silhouettes)
    assert twin.cut_units(desc, mine)[outline] == pytest.approx(whole)
    assert _best_option(mine, img, twin, flat)[1] > 4.5


def _flat(colour: list[float]) -> RegionDescriptor:
    """A region described by a 4-bin colour histogram alone (its pattern zero, no outline)."""
    return RegionDescriptor(colour=np.asarray(colour, np.float32), pattern=np.zeros(1, np.float32), outline=None)


def test_a_candidate_beyond_the_limit_is_judged_against_the_lookalikes_seen_at_teach_time():
    shot, lookalike = _flat([1, 0, 0, 0]), _flat([0, 0, 0, 1])
    plain = CueCheck(references=(shot,), scale=np.array([0.08, 1.0, 1.0]), accept=4.5)
    cues = dataclasses.replace(plain, negatives=(lookalike,))
    like_shot = _flat([0.7, 0.3, 0, 0])  # Hellinger 0.40 to the shot, 1.0 to the look-alike
    like_lookalike = _flat([0.3, 0, 0, 0.7])  # 0.67 to the shot, 0.40 to the look-alike
    near, far = cues.distance(like_shot), cues.distance(like_lookalike)
    assert cues.accept < near < NEARER_SLACK * cues.accept < far < TRACKED_SLACK * cues.accept
    assert cues.negative_distance(like_shot) > near and cues.negative_distance(like_lookalike) < far
    # Nearer the shot than the look-alike: a new candidate passes, as it did not without negatives.
    assert near > acceptance_limit(plain, False, like_shot, near)
    assert near <= acceptance_limit(cues, False, like_shot, near)
    # Nearer the look-alike: the tracked candidate no longer passes, as it did without negatives.
    assert far <= acceptance_limit(plain, True, like_lookalike, far)
    assert far > acceptance_limit(cues, True, like_lookalike, far)
    # A border-cut new candidate is not relaxed (its outline was measured against a cut shot).
    cut = dataclasses.replace(like_shot, cut=True)
    assert near > acceptance_limit(cues, False, cut, near)
    # Within the limit nothing changes, and without a description neither.
    assert acceptance_limit(cues, True, shot, 0.0) == acceptance_limit(cues, True) == TRACKED_SLACK * cues.accept
    assert CueCheck(references=(shot,), scale=np.ones(3), accept=4.5).negative_distance(like_shot) == float("inf")


def test_a_new_candidate_nearer_a_lookalike_seen_at_teach_time_than_the_shots_does_not_pass():
    shot, lookalike = _flat([1, 0, 0, 0]), _flat([0.5, 0, 0, 0.5])
    plain = CueCheck(references=(shot,), scale=np.array([0.1, 1.0, 1.0]), accept=4.5)
    cues = dataclasses.replace(plain, negatives=(lookalike,))
    between = _flat([0.7, 0, 0, 0.3])  # Hellinger 0.40 to the shot (4.0 units), 0.15 to the look-alike
    mine = _flat([0.95, 0, 0, 0.05])  # 0.16 to the shot, 0.39 to the look-alike
    d_between, d_mine = cues.distance(between), cues.distance(mine)
    assert d_between < cues.accept and cues.negative_distance(between) < d_between
    assert d_between <= acceptance_limit(plain, False, between, d_between)  # passed without negatives
    assert d_between > acceptance_limit(cues, False, between, d_between)  # the look-alike's side: not mine
    assert d_between <= acceptance_limit(cues, True, between, d_between)  # a track is judged as before
    assert d_mine <= acceptance_limit(cues, False, mine, d_mine)
    # A border-cut one is left to the cut check (its outline was measured against a cut shot).
    cut = dataclasses.replace(between, cut=True)
    assert d_between <= acceptance_limit(cues, False, cut, d_between)


def test_a_thin_strip_along_a_neighbour_is_dropped_from_a_tracked_mask_only():
    references = _references()
    cues = CueCheck(references=references, scale=CUE_FLOORS.copy(), accept=4.5, weights=np.array([1.0, 1.0, 3.0]))
    img, found = frame({"mine": (120, 120, 0)}, seed=8)
    ys, xs = np.nonzero(found["mine"])
    strip = np.zeros_like(found["mine"])
    strip[ys.min() - 3:ys.min() + 2, xs.max() - 10:xs.max() + 70] = True  # 5 px wide, off the top right
    spilled = found["mine"] | strip
    flat = torch.zeros(img.shape[:2])
    new, new_distance, _, _, _ = _best_option(spilled, img, cues, flat)
    held, held_distance, _, _, on_track = _best_option(spilled, img, cues, flat, tracked=True)
    assert on_track and held_distance < cues.accept < new_distance
    assert not (held & strip & ~found["mine"]).any() and iou(held, found["mine"]) > 0.9
    assert (new & strip).sum() == (spilled & strip).sum()  # a new candidate keeps it: not vouched for


def test_a_tracked_mask_that_spilled_beyond_where_its_object_was_is_checked_cut_back_to_its_reach():
    from perovss_ros.core.decide import last_mask_of, within_reach
    from perovss_ros.core.tracker import TrackPrompt

    references = _references()
    cues = CueCheck(references=references, scale=CUE_FLOORS.copy(), accept=4.5, weights=np.array([1.0, 1.0, 3.0]))
    img, found = frame({"mine": (120, 120, 0)}, seed=8)
    mine = found["mine"]
    ys, xs = np.nonzero(mine)
    # A thick spill off its right side onto a neighbour that looks like its own surface: neither colour
    # support nor the strip cut removes it.
    r0, r1, c0, c1 = ys.min() + 15, ys.min() + 35, xs.max() - 2, xs.max() + 30
    img = img.copy()
    img[r0:r1, c0:c1] = img[r0:r1, c0 - 32:c1 - 32]
    blob = np.zeros_like(mine)
    blob[r0:r1, c0:c1] = True
    spilled = mine | blob
    box = (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))
    track = TrackPrompt(box=box, centre=((box[0] + box[2]) / 2, (box[1] + box[3]) / 2), predicted=box,
                        last_mask=mine)
    last = last_mask_of(track)
    flat = torch.zeros(img.shape[:2])
    _, new_distance, _, _, _ = _best_option(spilled, img, cues, flat)
    held, held_distance, _, _, on_track = _best_option(spilled, img, cues, flat, tracked=True, track=track)
    assert on_track and held_distance < cues.accept < new_distance
    assert not (held & ~last.reach).any() and iou(held, mine) > 0.9
    # Nothing beyond the reach: nothing to cut. Mostly elsewhere: not the object moved on, no cut makes it so.
    assert within_reach(mine, last) is None
    assert within_reach(np.roll(mine, 150, axis=1), last) is None
    assert within_reach(spilled, last_mask_of(track._replace(last_mask=None))) is None


def test_a_region_is_also_judged_in_the_frame_as_it_is_when_the_light_correction_is_wrong():
    from perovss_ros.core.decide import _FrameLight, judge_region
    from perovss_ros.core.illuminant import illuminant

    img, found = frame({"mine": (90, 120, 0), "colour": (230, 120, 30)}, seed=8)
    own = illuminant(img)
    # The shots' light as an estimate fooled by the objects in view would have it: 15 % redder, 15 % less
    # blue than this frame's, where the light is in fact the same.
    fooled = own * np.array([1.15, 1.0, 0.85], np.float32)
    cues = CueCheck(references=_references(), scale=CUE_FLOORS.copy(), accept=4.5,
                    light=(fooled / fooled.mean()).astype(np.float32))
    views = _FrameLight(img, True).views(cues)
    assert len(views) == 2 and views[1] is img and not np.array_equal(views[0], img)
    flat = torch.zeros(img.shape[:2])
    assert _best_option(found["mine"], views[0], cues, flat)[1] > cues.accept  # relit alone: turned down
    distance, limit = judge_region(found["mine"], img, cues)
    assert distance <= limit
    distance, limit = judge_region(found["colour"], img, cues)
    assert distance > limit  # the blue look-alike stays out in both views
    same = dataclasses.replace(cues, light=own)  # nothing to correct: the frame alone
    assert len(_FrameLight(img, True).views(same)) == 1 and _FrameLight(img, True).views(same)[0] is img


def test_without_strips_drops_a_thin_spur_and_leaves_a_plain_shape_alone():
    from perovss_ros.core.shape import without_strips

    yy, xx = np.mgrid[:240, :320]
    disc = (xx - 160) ** 2 + (yy - 120) ** 2 < 50 ** 2
    spur = disc | ((np.abs(yy - xx + 40) < 3) & (xx > 150) & (xx < 260))  # a 4 px diagonal line out of it
    stripped = without_strips(spur)
    assert stripped is not None and not stripped[220 - 40, 220] and iou(stripped, disc) > 0.97
    assert without_strips(disc) is None  # nothing thin to drop
    assert without_strips(np.zeros_like(disc)) is None
