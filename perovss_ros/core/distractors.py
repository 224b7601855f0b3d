"""What not to track: the look-alikes seen beside a concept while it was found with confidence.

A look-alike that differs from the concept in one attribute can pass the region check in a frame
where that attribute is hard to see (an occluder cuts the outline, the light shifts the colour).
Appearance alone cannot rule it out then, but where it has been can: in the frames before, while
the concept was followed and plainly passed the check, the look-alike was a separate candidate
region beside it. ``DistractorMemory`` keeps those regions (per concept, bounded) and follows them
from frame to frame by their overlap with the next frame's candidates, as a tracker follows its
target (the idea of distractor-aware trackers such as KeepTrack). A candidate that continues a
distractor is not the concept while the distractor is followed, even when the concept itself is
hidden or out of view and the look-alike is the best thing left.

Only confident frames add distractors (``learn``): a frame where the concept's choice is unsure
could make the concept itself a distractor. Every frame moves them on (``associate``); one not
seen as itself for ``MAX_MISSED`` frames is dropped, so the memory forgets a look-alike that left.

A distractor followed onto a region that reached where the concept was expected is ``doubtful``:
following by overlap may have carried it onto the concept. The decision gives a region that only
doubtful distractors hold back one strict check (``core/decide.py``, ``RECHECK``) and, when the
region plainly is the concept, ``release``s it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from perovss_ros.core.identity import grow_cells
from perovss_ros.core.matching import mask_iou

# Distractors kept per concept (the highest-scoring new ones first).
MAX_DISTRACTORS = 8
# A distractor not matched for more than this many frames is dropped.
MAX_MISSED = 3
# A candidate continues a distractor when at least this share of its cells lies within the
# distractor's cells grown by FOLLOW_RINGS cells (how far a region may move between frames).
FOLLOW_SHARE = 0.5
FOLLOW_RINGS = 2
# A distractor does not take on a region more than this many times its size (see ``associate``).
MAX_GROWTH = 1.5
# Regions smaller than this share of the concept's are not learnt: fragments of the head's map, not
# an object that could be taken for the concept.
MIN_SIZE_SHARE = 0.25


@dataclass
class Distractor:
    """One region followed as "not the concept": ``cells`` (``h×w`` bool grid) where it was last seen,
    ``missed`` frames since then, and whether it is ``doubtful``: it was followed onto a region that
    reached where the concept was expected, so it may have been carried onto the concept."""

    cells: np.ndarray
    missed: int = 0
    doubtful: bool = False


def _follows(cells: np.ndarray, reach: np.ndarray) -> bool:
    """Whether a region's ``h×w`` bool ``cells`` continue a distractor whose ``reach`` (its cells grown by
    ``FOLLOW_RINGS``) holds at least ``FOLLOW_SHARE`` of them."""
    return bool(cells.any()) and int((cells & reach).sum()) >= FOLLOW_SHARE * int(cells.sum())


class DistractorMemory:
    """Per concept: the regions followed as look-alikes, on one grid size. Not thread-safe by itself.

    ``held_by_doubt``: per region of the last ``associate``, whether the distractors that continue it are
    all ``doubtful`` (and there is one): the regions a carried distractor may wrongly hold back.
    """

    def __init__(self) -> None:
        self.items: list[Distractor] = []
        self.held_by_doubt: list[bool] = []

    def associate(self, regions: list[np.ndarray], keep_out: np.ndarray | None = None) -> list[bool]:
        """Move every distractor onto this frame's candidate ``regions`` (``h×w`` bool cells each) and
        say which of them continue one (those are not the concept).

        A distractor moves to the marked region most like its last cells (IoU), less the ``keep_out``
        cells (where the concept is expected: its track's predicted box), unless what is left is more
        than ``MAX_GROWTH`` times its size (merged with a neighbour) or nothing: then it stays where it
        was. So a look-alike passing close never carries its distractor onto the concept. One that no region
        continues, or only regions more than ``MAX_GROWTH`` times its size, counts a missed frame and is
        dropped after ``MAX_MISSED``. A grid of another size
        (the image size changed) drops every distractor.
        """
        marked = [False] * len(regions)
        sure = [False] * len(regions)  # continued by a distractor that is not doubtful
        if self.items and regions and self.items[0].cells.shape != regions[0].shape:
            self.items = []
        kept = []
        for item in self.items:
            reach = grow_cells(item.cells, FOLLOW_RINGS)
            follows = [n for n, cells in enumerate(regions) if _follows(cells, reach)]
            doubtful = item.doubtful
            if follows:
                # The one most like it (IoU), not the largest: a region merged with a neighbour must
                # not carry the distractor onto the neighbour.
                best = max(follows, key=lambda n: mask_iou(regions[n], item.cells))
                cells = regions[best] & ~keep_out if keep_out is not None else regions[best]
                doubtful = doubtful or (keep_out is not None and bool((regions[best] & keep_out).any()))
                if not cells.any():  # on the concept's way: it stays where it was
                    kept.append(Distractor(item.cells, 0, doubtful))
                elif int(cells.sum()) <= MAX_GROWTH * int(item.cells.sum()):
                    kept.append(Distractor(cells.copy(), 0, doubtful))
                elif item.missed < MAX_MISSED:
                    # Merged into something larger, not seen as itself: it stays and counts a missed frame,
                    # so a distractor left behind is not kept alive by whatever passes over its place.
                    kept.append(Distractor(item.cells, item.missed + 1, doubtful))
            elif item.missed < MAX_MISSED:
                kept.append(Distractor(item.cells, item.missed + 1, doubtful))
            for n in follows:
                marked[n] = True
                sure[n] = sure[n] or not doubtful
        self.items = kept
        self.held_by_doubt = [m and not s for m, s in zip(marked, sure, strict=True)]
        return marked

    def learn(self, regions: list[np.ndarray], scores: list[float], concept_cells: np.ndarray) -> None:
        """In a frame where the concept was found with confidence at ``concept_cells`` (``h×w`` bool):
        drop the distractors that lie on it, and follow every candidate region apart from it (``scores``:
        the regions' head scores, the strongest kept first when the memory is full).

        Regions smaller than ``MIN_SIZE_SHARE`` of the concept's cells are fragments, not learnt."""
        self.items = [d for d in self.items if not (d.cells & concept_cells).any()]
        # A region within following reach of the concept may be a part of it the mask missed.
        near = grow_cells(concept_cells, FOLLOW_RINGS + 1)
        least = MIN_SIZE_SHARE * int(concept_cells.sum())
        known = np.zeros_like(concept_cells)
        for item in self.items:
            known |= item.cells
        order = sorted(range(len(regions)), key=lambda n: -scores[n])
        for n in order:
            if len(self.items) >= MAX_DISTRACTORS:
                break
            cells = regions[n]
            if cells.sum() >= least and not (cells & near).any() and not (cells & known).any():
                self.items.append(Distractor(cells.copy(), 0))
                known |= cells

    def release(self, cells: np.ndarray) -> None:
        """Drop the distractors that ``cells`` (``h×w`` bool) continue: a region found to be the concept
        after all (it passed the region check plainly)."""
        self.items = [d for d in self.items if not _follows(cells, grow_cells(d.cells, FOLLOW_RINGS))]

    def clear(self) -> None:
        """Forget every distractor."""
        self.items = []
        self.held_by_doubt = []
