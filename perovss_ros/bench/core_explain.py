"""Why a quality pair went wrong: every miss, wrong pick and false alarm sorted by its cause.

``perovss bench core --part quality --explain`` records the identity decision's trace
(``core/decide.py``'s ``CandidateTrace``: every decoded candidate, its weighted cue units, the
limit it had to meet, whether it continued the track, whether the border cuts it) and, with the
scene's ground truth, names what happened to each pair that did not come out right:

* a miss where my object was decoded but the region check turned it down, with the cue that
  counted most against it and whether the border cut it (the object entering or leaving view);
* a miss where my object passed the region check but another region elsewhere passed as well
  (``decide.AMBIGUITY``: a new pick between two that fit alike waits);
* a miss where no decoded mask lies on my object (IoU ≥ ``MINE_IOU``): it was not among the
  eligible candidates, or its candidate's mask spilled onto a neighbour or covered only part of it;
* a wrong pick or a false alarm, split by whether the pick continued the track (a look-alike the
  tracker locked onto) and, for a wrong pick, whether a decoded mask on my object was passed over.

Each miss also says whether my object's ground-truth mask passes the region check as a new detection
(``Pipeline.judge_region``): "true mask passes" puts the miss on the mask (the decode lost part of
the object or spilled, or no candidate found it), "true mask fails too" on the identity check.

The counts say where the errors come from; they change nothing in the decision.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from perovss_ros.core.appearance import CUES
from perovss_ros.core.decide import CandidateTrace
from perovss_ros.core.matching import mask_iou

# A decoded candidate is "my object" when it overlaps the ground truth this much (the outcome
# classification's own threshold for a right mask).
MINE_IOU = 0.5


def explain_pair(outcome: str, traces: Sequence[CandidateTrace], gt: np.ndarray,
                 truth_passes: bool | None = None) -> str | None:
    """The cause of one (frame, object) pair's ``outcome`` (``eval.metrics.classify_outcome``), or None
    for a pair that came out right, a true absence, or a partial/spilled mask (a mask problem, not identity).

    ``traces``: this concept's decoded candidates in the frame; ``gt``: ``H×W bool`` ground truth of the
    object (empty when absent); ``truth_passes``: whether ``gt`` passes the region check as a new
    detection (``Pipeline.judge_region``), added to a miss's cause; None: not said.
    """
    mine = [t for t in traces if gt.any() and mask_iou(t.mask, gt) >= MINE_IOU]
    if outcome == "miss":
        truth = "" if truth_passes is None else ("; true mask passes" if truth_passes else "; true mask fails too")
        if not mine:
            return "miss: no decoded mask on mine" + truth
        best = min(mine, key=lambda t: t.distance)
        if best.units is None:
            return "miss: mine decoded, too small to describe" + truth
        if best.distance <= best.limit:
            return "miss: mine passed, tied with another region (ambiguous)"
        cue = CUES[int(np.argmax(best.units))]
        return f"miss: mine decoded, turned down by {cue}" + (" (cut by the border)" if best.cut else "") + truth
    if outcome in ("wrong_object", "false_alarm"):
        chosen = [t for t in traces if t.chosen]
        how = "tracked" if chosen and chosen[0].tracked else "untracked"
        if outcome == "false_alarm":
            return f"false alarm: {how} pick"
        return f"wrong: {how} pick, " + ("a decoded mask on mine too" if mine else "no decoded mask on mine")
    return None


def truth_passes(outcome: str, judged: tuple[float, float] | None) -> bool | None:
    """Whether a miss's ground-truth mask passed the region check, from its ``(distance, limit)``
    (``Pipeline.judge_region``); None for other outcomes or an unjudged mask."""
    if outcome != "miss" or judged is None:
        return None
    return judged[0] <= judged[1]


def explain_counts(causes: Sequence[str | None]) -> Counter[str]:
    """How often each cause occurs (None entries, the pairs with nothing to explain, are left out)."""
    return Counter(c for c in causes if c is not None)


def explain_text(counts: Counter[str]) -> str:
    """The causes as indented lines, most frequent first."""
    if not counts:
        return "  causes: nothing to explain"
    width = max(len(c) for c in counts)
    return "\n".join(["  causes:"] + [f"    {cause:<{width}}  {n}" for cause, n in counts.most_common()])
