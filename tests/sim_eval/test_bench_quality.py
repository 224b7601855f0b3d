"""Smoke test of `perovss bench core --part quality`: it runs and its counts add up (no timing asserted)."""

from __future__ import annotations

from perovss_ros.cli import main


def test_quality_bench_counts_every_object_frame(capsys):
    from perovss_ros.bench.core import run_quality
    from perovss_ros.cli import build_parser

    args = build_parser().parse_args(["bench", "core", "--part", "quality", "--difficulty", "hard", "--sequences",
                                      "2", "--first-seed", "990", "--frames", "3", "--size", "160x120"])
    result = run_quality(args)
    out = capsys.readouterr().out
    assert "seq  990" in out and "seq  991" in out and "wrong object" in out and "target ≤ 3 %" in out
    assert result["seeds"] == [990, 991] and result["difficulty"] == "hard" and result["lookalikes_per_object"] == 3
    # Seeds 990 and 991 have 1 + seed % 3 = 1 and 2 personal objects: 3 frames each.
    assert [s["objects"] for s in result["per_sequence"]] == [1, 2]
    counts = result["outcomes"]
    assert counts["present"] + counts["absent"] == 3 * (1 + 2)
    assert counts["lookalike_scored"] == 9
    assert counts["present"] == result["pairs_present"]
    present = counts["present"]
    assert result["wrong_object_fraction"] == (counts["wrong_object"] / present if present else 0.0)
    assert sum(s["outcomes"]["right"] for s in result["per_sequence"]) == counts["right"]


def test_quality_bench_explains_every_miss_wrong_pick_and_false_alarm(capsys):
    from perovss_ros.bench.core import run_quality
    from perovss_ros.cli import build_parser

    args = build_parser().parse_args(["bench", "core", "--part", "quality", "--difficulty", "hard", "--sequences",
                                      "1", "--first-seed", "992", "--frames", "6", "--size", "320x240", "--explain"])
    result = run_quality(args)
    counts, causes = result["outcomes"], result["causes"]
    assert "causes:" in capsys.readouterr().out
    # One cause per pair that went wrong for identity's reasons, none for the others.
    assert sum(causes.values()) == counts["miss"] + counts["wrong_object"] + counts["false_alarm"]
    assert all(c.split(":")[0] in ("miss", "wrong", "false alarm") for c in causes)


def test_quality_bench_rejects_too_many_lookalikes(capsys):
    assert main(["bench", "core", "--part", "quality", "--difficulty", "hard", "--lookalikes-per-object", "5"]) == 1
    assert "0..4" in capsys.readouterr().err
