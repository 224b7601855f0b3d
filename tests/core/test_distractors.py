"""DistractorMemory on hand-made grids: learnt only apart from the concept, followed, merged, dropped."""

from __future__ import annotations

import numpy as np

from perovss_ros.core.distractors import MAX_DISTRACTORS, MAX_MISSED, DistractorMemory

GRID = (20, 30)


def block(y: int, x: int, h: int = 3, w: int = 3, grid: tuple[int, int] = GRID) -> np.ndarray:
    """``h×w`` bool cells of a ``grid``-sized map set in an ``h×w`` block at row ``y``, column ``x``."""
    cells = np.zeros(grid, bool)
    cells[y:y + h, x:x + w] = True
    return cells


def test_only_regions_apart_from_the_concept_are_learnt():
    memory = DistractorMemory()
    concept = block(5, 5)
    touching = block(5, 8)  # right next to the concept: may be a part of it the mask missed
    apart = block(5, 20)
    memory.learn([concept, touching, apart], [3.0, 2.0, 1.0], concept)
    assert len(memory.items) == 1
    assert np.array_equal(memory.items[0].cells, apart)


def test_a_distractor_is_followed_as_it_moves_and_marks_what_continues_it():
    memory = DistractorMemory()
    memory.learn([block(5, 20)], [1.0], block(5, 5))
    x = 20
    for _ in range(4):
        x -= 1  # one cell a frame towards the concept's side
        marked = memory.associate([block(5, 5), block(5, x)])
        assert marked == [False, True]
    assert np.array_equal(memory.items[0].cells, block(5, x))


def test_a_distractor_unseen_for_long_is_dropped():
    memory = DistractorMemory()
    memory.learn([block(5, 20)], [1.0], block(5, 5))
    for frame in range(MAX_MISSED):
        assert memory.associate([block(5, 5)]) == [False]
        assert len(memory.items) == 1, frame
    memory.associate([block(5, 5)])
    assert memory.items == []
    # Far from where it was last seen, the same look-alike is a new region, not marked.
    assert memory.associate([block(5, 20)]) == [False]


def test_a_distractor_does_not_take_on_a_region_merged_with_its_neighbour():
    memory = DistractorMemory()
    memory.learn([block(5, 14)], [1.0], block(5, 5))
    merged = block(5, 8, w=9)  # the look-alike and the concept touching: one region
    memory.associate([merged, block(5, 14)])
    assert np.array_equal(memory.items[0].cells, block(5, 14))
    memory.associate([merged])  # only the merged region this time
    assert np.array_equal(memory.items[0].cells, block(5, 14))
    # The concept on its own again, beside it: not marked.
    assert memory.associate([block(5, 6), block(5, 14)]) == [False, True]


def test_a_distractor_seen_only_inside_larger_regions_is_dropped_after_its_missed_frames():
    memory = DistractorMemory()
    memory.learn([block(5, 14)], [1.0], block(5, 5))
    wide = block(4, 10, h=5, w=10)  # something much larger passing over where it was: not the look-alike itself
    for frame in range(MAX_MISSED):
        assert memory.associate([wide]) == [True]
        assert len(memory.items) == 1 and memory.items[0].missed == frame + 1
    memory.associate([wide])
    assert memory.items == []
    # The concept coming back to that place is then not taken for the look-alike.
    assert memory.associate([block(5, 14)]) == [False]


def test_learning_on_the_concept_drops_a_distractor_there():
    memory = DistractorMemory()
    memory.learn([block(5, 20)], [1.0], block(5, 5))
    memory.learn([block(5, 20)], [1.0], block(5, 20))  # it was the concept after all
    assert memory.items == []


def test_the_memory_is_bounded_and_keeps_the_strongest():
    memory = DistractorMemory()
    regions = [block(1 + 4 * (n // 5), 4 + 5 * (n % 5), 2, 2) for n in range(MAX_DISTRACTORS + 5)]
    scores = [float(n) for n in range(len(regions))]
    memory.learn(regions, scores, block(0, 0, 1, 1))
    assert len(memory.items) == MAX_DISTRACTORS
    kept = {int(np.flatnonzero(item.cells.ravel())[0]) for item in memory.items}
    strongest = {int(np.flatnonzero(regions[n].ravel())[0]) for n in range(5, len(regions))}
    assert kept == strongest


def test_another_grid_size_forgets_everything():
    memory = DistractorMemory()
    memory.learn([block(5, 20)], [1.0], block(5, 5))
    other = block(5, 20, grid=(30, 40))
    assert memory.associate([other]) == [False]
    assert memory.items == []


def test_a_distractor_never_moves_onto_where_the_concept_is_expected():
    memory = DistractorMemory()
    memory.learn([block(5, 14)], [1.0], block(5, 5))
    expected = block(4, 4, 5, 8)  # the concept's predicted box: columns 4-11
    # The look-alike reaches into the concept's box: it is marked, but its distractor keeps out of the box.
    assert memory.associate([block(5, 10, w=6)], keep_out=expected) == [True]
    assert np.array_equal(memory.items[0].cells, block(5, 12, w=4))
    # Wholly inside the box: marked, and the distractor stays where it was.
    assert memory.associate([block(5, 9)], keep_out=expected) == [True]
    assert np.array_equal(memory.items[0].cells, block(5, 12, w=4)) and memory.items[0].missed == 0


def test_fragments_much_smaller_than_the_concept_are_not_learnt():
    memory = DistractorMemory()
    concept = block(2, 2, 6, 6)  # 36 cells
    memory.learn([block(2, 20, 2, 2), block(10, 20, 3, 3)], [2.0, 1.0], concept)  # 4 cells: a fragment; 9 cells
    assert len(memory.items) == 1 and int(memory.items[0].cells.sum()) == 9



def test_released_region_is_no_longer_taken_for_a_distractor():
    memory = DistractorMemory()
    memory.learn([block(5, 14), block(12, 24)], [2.0, 1.0], block(5, 5))
    # The concept, lost, comes back beside the first look-alike: the distractor marks it.
    assert memory.associate([block(5, 12), block(12, 24)]) == [True, True]
    memory.release(block(5, 12))  # it passed the region check plainly: the concept after all
    assert len(memory.items) == 1 and np.array_equal(memory.items[0].cells, block(12, 24))
    assert memory.associate([block(5, 12), block(12, 24)]) == [False, True]
    # A region away from every distractor releases nothing.
    memory.release(block(0, 0, 2, 2))
    assert len(memory.items) == 1


def test_a_distractor_followed_across_where_the_concept_was_expected_is_doubtful():
    memory = DistractorMemory()
    memory.learn([block(5, 14), block(12, 24)], [2.0, 1.0], block(5, 5))
    expected = block(4, 4, 5, 8)  # the concept's predicted box: columns 4-11
    regions = [block(5, 10, w=6), block(12, 24)]  # the first look-alike reaches into the box
    assert memory.associate(regions, keep_out=expected) == [True, True]
    assert [item.doubtful for item in memory.items] == [True, False]
    assert memory.held_by_doubt == [True, False]
    # Doubt stays with it as it moves on; a region no distractor holds is not held by doubt either.
    later = [block(5, 13), block(12, 22), block(0, 0, 2, 2)]
    assert memory.associate(later) == [True, True, False]
    assert memory.held_by_doubt == [True, False, False]
    memory.clear()
    assert memory.held_by_doubt == []
