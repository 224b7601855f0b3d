"""Smoke test of `perovss bench core --part labels`: it runs the three pipelines and its counts add up.

Needs the synthetic CLIP (built once into the model directory when missing, as the labels tests do).
No timing is asserted, only that the stages are reported.
"""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


def test_labels_bench_scores_every_object_frame(capsys) -> None:
    from perovss_ros.bench.core_labels import run_labels
    from perovss_ros.cli import build_parser
    from perovss_ros.core.labels import synthetic_clip
    from perovss_ros.sim.scenes import make_scene

    synthetic_clip.build()  # a no-op when cached
    args = build_parser().parse_args(["bench", "core", "--part", "labels", "--difficulty", "hard", "--sequences",
                                      "1", "--first-seed", "990", "--frames", "2", "--size", "160x120"])
    result = run_labels(args)
    out = capsys.readouterr().out
    assert "seed  990" in out and "right category" in out and "floor ≤ 2 %" in out
    # The same scene, counted here from its ground truth: seed 990 has 1 + 990 % 3 = 1 personal object.
    scene = make_scene(seed=990, num_frames=2, size=(160, 120), num_objects=1, num_lookalikes=3, difficulty="hard")
    mine = {o.object_id for o in scene.objects}
    others = same = 0
    for objects in scene.object_gt:
        present = [int(v) for v in np.unique(objects) if v]
        others += sum(1 for v in present if v not in mine)
        for o in scene.objects:
            same += sum(1 for v in present if v != o.object_id and scene.object_ids[v].shape == o.shape)
    assert (others, same) == (6, 4)  # 3 look-alikes in both frames, 2 of them mugs like my_mug
    assert result["right_category_object_frames"] == others
    assert result["lookalike_object_frames"] == same
    assert result["frames"] == 2 and result["seeds"] == [990]
    assert 0.0 <= result["right_category"] <= 1.0 and result["ms_off"] > 0
    assert "label" in result["stages_ms"]["on"] and "label" not in result["stages_ms"]["off"]
    # Labelling runs after the personal segments: on and off segment them alike (fusion is off).
    assert result["iou_per_on"] == result["iou_per_off"]
