"""The quality benchmark's failure causes (``bench/core_explain.py``) on hand-made traces."""

from __future__ import annotations

import numpy as np

from perovss_ros.bench.core_explain import explain_counts, explain_pair, explain_text, truth_passes
from perovss_ros.core.decide import CandidateTrace


def _square(x0: int, y0: int, size: int = 10, hw: tuple[int, int] = (40, 60)) -> np.ndarray:
    mask = np.zeros(hw, bool)
    mask[y0:y0 + size, x0:x0 + size] = True
    return mask


def _trace(mask: np.ndarray, units, tracked: bool = False, cut: bool = False, chosen: bool = False) -> CandidateTrace:
    units = np.asarray(units, float)
    return CandidateTrace(0, mask, units, float(units.sum()), 4.5, tracked, cut, chosen)


def test_a_miss_names_the_cue_that_turned_mine_down():
    gt = _square(5, 5)
    lookalike = _trace(_square(40, 20), [0.2, 5.0, 0.1])
    mine = _trace(_square(5, 5), [0.5, 0.4, 4.0], cut=True)
    cause = explain_pair("miss", [lookalike, mine], gt)
    assert cause == "miss: mine decoded, turned down by outline (cut by the border)"
    whole = _trace(_square(6, 5), [4.0, 0.4, 1.0])
    assert explain_pair("miss", [whole], gt) == "miss: mine decoded, turned down by colour"


def test_a_miss_says_whether_the_true_mask_passes():
    gt = _square(5, 5)
    mine = _trace(_square(5, 5), [0.5, 0.4, 4.0])
    assert explain_pair("miss", [mine], gt, truth_passes(
        "miss", (3.0, 4.5))) == "miss: mine decoded, turned down by outline; true mask passes"
    assert explain_pair("miss", [], gt, truth_passes(
        "miss", (6.0, 4.5))) == "miss: no decoded mask on mine; true mask fails too"
    # Only misses are judged; an unjudged mask adds nothing.
    assert truth_passes("wrong_object", (3.0, 4.5)) is None
    assert explain_pair("miss", [mine], gt, truth_passes("miss", None)) == "miss: mine decoded, turned down by outline"


def test_a_miss_where_mine_passed_beside_an_equal_region_is_called_ambiguous():
    gt = _square(5, 5)
    mine = _trace(_square(5, 5), [0.5, 0.4, 1.0])
    twin = _trace(_square(40, 20), [0.4, 0.5, 1.0])
    assert explain_pair("miss", [mine, twin], gt) == "miss: mine passed, tied with another region (ambiguous)"


def test_a_miss_without_my_object_among_the_decoded_says_so():
    elsewhere = _trace(_square(40, 20), [9.0, 0.0, 0.0])
    assert explain_pair("miss", [elsewhere], _square(5, 5)) == "miss: no decoded mask on mine"
    assert explain_pair("miss", [], _square(5, 5)) == "miss: no decoded mask on mine"


def test_wrong_picks_and_false_alarms_say_whether_the_track_kept_them():
    gt = _square(5, 5)
    locked = _trace(_square(40, 20), [1.0, 1.0, 3.0], tracked=True, chosen=True)
    mine = _trace(_square(5, 5), [2.0, 2.0, 2.0])
    assert explain_pair("wrong_object", [locked, mine], gt) == "wrong: tracked pick, a decoded mask on mine too"
    fresh = _trace(_square(40, 20), [1.0, 1.0, 1.0], chosen=True)
    assert explain_pair("wrong_object", [fresh], gt) == "wrong: untracked pick, no decoded mask on mine"
    absent = np.zeros_like(gt)
    assert explain_pair("false_alarm", [locked], absent) == "false alarm: tracked pick"


def test_right_pairs_have_nothing_to_explain_and_counts_leave_them_out():
    gt = _square(5, 5)
    causes = [explain_pair("right", [_trace(gt, [0, 0, 0], chosen=True)], gt),
              explain_pair("true_absent", [], np.zeros_like(gt)),
              explain_pair("miss", [], gt), explain_pair("miss", [], gt)]
    counts = explain_counts(causes)
    assert counts == {"miss: no decoded mask on mine": 2}
    assert "miss: no decoded mask on mine  2" in explain_text(counts)
    assert "nothing to explain" in explain_text(explain_counts([None]))
