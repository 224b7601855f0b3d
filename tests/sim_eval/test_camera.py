"""The worse camera of `sim/camera.py` and the bench options that apply it."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest

from perovss_ros.cli import main
from perovss_ros.sim.camera import CameraDegradation, degrade_scene
from perovss_ros.sim.scenes import make_scene


def _flat(value: int = 128) -> np.ndarray:
    return np.full((64, 80, 3), value, np.uint8)


def test_noise_has_the_asked_spread_and_is_reproducible():
    camera = CameraDegradation(noise_sigma=6.0)
    image = _flat()
    first = camera.apply(image, np.random.default_rng(3))
    again = camera.apply(image, np.random.default_rng(3))
    other = camera.apply(image, np.random.default_rng(4))
    assert first.dtype == np.uint8 and first.shape == image.shape
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    spread = float(first.astype(np.float32).std())
    assert 5.0 < spread < 7.0
    assert np.array_equal(image, _flat())  # the input is not changed in place


def test_blur_softens_an_edge_and_jpeg_changes_pixels_but_not_the_picture():
    image = _flat(40)
    image[:, 40:] = 220
    blurred = CameraDegradation(blur_sigma=2.0).apply(image, np.random.default_rng(0))
    # A step edge becomes a ramp: values between the two sides appear next to it.
    row = blurred[32, :, 0].astype(int)
    assert 40 < row[39] < 220 and 40 < row[40] < 220
    assert row[0] == 40 and row[-1] == 220
    textured = np.random.default_rng(1).integers(0, 256, (64, 80, 3), dtype=np.uint8)
    jpeg = CameraDegradation(jpeg_quality=30).apply(textured, np.random.default_rng(0))
    assert jpeg.shape == textured.shape and jpeg.dtype == np.uint8
    assert not np.array_equal(jpeg, textured)
    # Flat colours survive a JPEG round trip almost unchanged.
    flat = CameraDegradation(jpeg_quality=30).apply(_flat(90), np.random.default_rng(0))
    assert np.abs(flat.astype(int) - 90).max() <= 2


def test_the_light_warms_over_the_sequence_and_the_teach_captures_keep_the_first_light():
    scene = make_scene(seed=6, num_frames=5, size=(96, 72), num_objects=1, num_lookalikes=1)
    seen = degrade_scene(scene, CameraDegradation(light_shift=0.2), seed=6)
    assert all(np.array_equal(a, b) for a, b in zip(seen.teach_frames, scene.teach_frames, strict=True))
    assert np.array_equal(seen.frames[0], scene.frames[0])

    def balance(a: np.ndarray, b: np.ndarray, channel: int) -> float:
        """Mean of channel ``channel`` of ``a`` over that of ``b``, on pixels neither clips nor darkens."""
        ok = (b.max(axis=2) < 200) & (b.min(axis=2) > 20)
        return float(a[..., channel][ok].mean() / b[..., channel][ok].mean())

    reds = [balance(f, g, 0) for f, g in zip(seen.frames, scene.frames, strict=True)]
    blues = [balance(f, g, 2) for f, g in zip(seen.frames, scene.frames, strict=True)]
    greens = [balance(f, g, 1) for f, g in zip(seen.frames, scene.frames, strict=True)]
    assert all(a < b for a, b in pairwise(reds)) and all(a > b for a, b in pairwise(blues))
    assert abs(reds[-1] - 1.2) < 0.02 and abs(blues[-1] - 0.8) < 0.02 and max(abs(g - 1) for g in greens) < 0.01
    assert CameraDegradation(light_shift=0.2).describe() == "light shift 0.2"


@pytest.mark.parametrize("kwargs", [{"blur_sigma": -1.0}, {"noise_sigma": float("nan")}, {"jpeg_quality": 0},
                                    {"jpeg_quality": 101}, {"light_shift": -0.1}, {"light_shift": 0.6},
                                    {"light_shift": float("inf")}])
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(ValueError):
        CameraDegradation(**kwargs)


def test_a_degraded_scene_keeps_its_ground_truth_and_degrades_the_teach_captures_too():
    scene = make_scene(seed=5, num_frames=3, size=(96, 72), num_objects=1, num_lookalikes=1)
    camera = CameraDegradation(noise_sigma=4.0, jpeg_quality=70)
    seen = degrade_scene(scene, camera, seed=5)
    assert len(seen.frames) == 3 and len(seen.teach_frames) == len(scene.teach_frames)
    assert all(not np.array_equal(a, b) for a, b in zip(seen.frames, scene.frames, strict=True))
    assert all(not np.array_equal(a, b) for a, b in zip(seen.teach_frames, scene.teach_frames, strict=True))
    assert all(np.array_equal(a, b) for a, b in zip(seen.gt, scene.gt, strict=True))
    name = scene.objects[0].name
    assert np.array_equal(seen.presence(name), scene.presence(name))
    again = degrade_scene(scene, camera, seed=5)
    assert all(np.array_equal(a, b) for a, b in zip(seen.frames, again.frames, strict=True))
    assert degrade_scene(scene, CameraDegradation(), seed=5) is scene
    assert camera.describe() == "noise 4, JPEG 70" and CameraDegradation().describe() == "clean"


def test_quality_bench_runs_through_the_worse_camera_and_says_so(capsys):
    from perovss_ros.bench.core import run_quality
    from perovss_ros.cli import build_parser

    args = build_parser().parse_args(["bench", "core", "--part", "quality", "--sequences", "1", "--first-seed", "993",
                                      "--frames", "2", "--size", "160x120", "--camera-noise", "5", "--jpeg-quality",
                                      "75", "--blur", "0.8", "--light-shift", "0.15"])
    result = run_quality(args)
    assert result["camera"] == "blur 0.8 px, noise 5, JPEG 75, light shift 0.15"
    assert "camera blur 0.8 px, noise 5, JPEG 75, light shift 0.15" in capsys.readouterr().out
    assert result["outcomes"]["present"] + result["outcomes"]["absent"] == 2 * (1 + 993 % 3)


def test_quality_bench_refuses_a_bad_camera(capsys):
    assert main(["bench", "core", "--part", "quality", "--jpeg-quality", "0"]) == 1
    assert "jpeg_quality 0" in capsys.readouterr().err
    assert main(["bench", "core", "--part", "quality", "--light-shift", "0.9"]) == 1
    assert "light_shift 0.9" in capsys.readouterr().err


def test_sim_writes_a_bag_through_the_worse_camera(tmp_path, capsys):
    from perovss_ros.sim.bags import read_frames
    from perovss_ros.sim.topics import MASK_TOPIC

    common = ["--frames", "3", "--width", "96", "--height", "72", "--seed", "6"]
    assert main(["sim", "--out", str(tmp_path / "clean"), *common]) == 0
    assert main(["sim", "--out", str(tmp_path / "worse"), *common, "--camera-noise", "4", "--jpeg-quality", "60"]) == 0
    assert "camera noise 4, JPEG 60" in capsys.readouterr().out
    clean = list(read_frames(tmp_path / "clean", mask_topic=MASK_TOPIC))
    worse = list(read_frames(tmp_path / "worse", mask_topic=MASK_TOPIC))
    assert len(clean) == len(worse) == 3
    assert all(not np.array_equal(a.rgb, b.rgb) for a, b in zip(clean, worse, strict=True))
    assert all(np.array_equal(a.mask, b.mask) for a, b in zip(clean, worse, strict=True))
    assert main(["sim", "--out", str(tmp_path / "bad"), *common, "--blur", "-1"]) == 1
    assert "blur_sigma -1" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
