"""Category ground truth of synthetic scenes: one fixed class-id table for every scene.

Every drawn object, personal or look-alike, belongs to the class of its shape
word (``mug``, ``ball``, ``box``, ``bottle``, ``book``); the static background
clutter (muted ellipses and rectangles drawn into the background) is the class
``clutter``. Class ids are the same in every scene (``CLASS_IDS``) so bags of
different seeds can be pooled; 0 means "no class" (background, table, the
sweeping occluder). A class-id map is ``H×W`` uint16.
"""

from __future__ import annotations

from perovss_ros.sim.sprites import SHAPES

CLUTTER = "clutter"
#: Class words in id order: the sprite shapes, then the background clutter.
CLASS_WORDS: tuple[str, ...] = (*SHAPES, CLUTTER)
#: The words a vocabulary names the scenes' objects by (clutter is background texture, no object word).
OBJECT_WORDS: tuple[str, ...] = SHAPES
#: word -> class id (1..len(CLASS_WORDS)); 0 is "no class".
CLASS_IDS: dict[str, int] = {word: k + 1 for k, word in enumerate(CLASS_WORDS)}
NO_CLASS = 0


def class_names() -> dict[int, str]:
    """The class table of synthetic scenes: class id -> word (0, "no class", is not in it)."""
    return {cid: word for word, cid in CLASS_IDS.items()}

