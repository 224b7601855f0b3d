"""Frames lost before they arrive, estimated from hand-made header stamps (no ROS needed)."""

from __future__ import annotations

import pytest

from perovss_ros.ros.frame_loss import ArrivalMonitor, common_period, header_stamp_ns, is_lossy, loss_advice

MS = 1_000_000
BASE = 1_700_000_000 * 1000 * MS  # a camera's stamps: wall-clock time in ns
CLOCK = 5_000 * 1000 * MS  # the node's monotonic clock when the first frame arrives


def feed(monitor: ArrivalMonitor, indices, period_ms: int = 100, jitter_ms=None, base: int = BASE,
         start: int = CLOCK) -> None:
    """Frames ``indices`` of a camera stamping every ``period_ms``; each arrives when it is stamped."""
    for n, i in enumerate(indices):
        offset = i * period_ms * MS
        jitter = jitter_ms[n] * MS if jitter_ms else 0
        monitor.add(base + offset + jitter, start + offset)


def test_every_frame_arriving_is_no_loss():
    monitor = ArrivalMonitor()
    feed(monitor, range(30))
    est = monitor.estimate()
    assert (est.received, est.sent, est.lost) == (30, 30, 0)
    assert est.period_s == pytest.approx(0.1) and est.rate_hz == pytest.approx(10.0)
    assert not is_lossy(est)


def test_two_of_every_five_arriving_is_lossy():
    # frames 0,1, 5,6, ..., 45,46 of a 10 Hz camera: 20 arrived of the 47 stamped from first to last
    monitor = ArrivalMonitor()
    feed(monitor, [i for i in range(50) if i % 5 in (0, 1)])
    est = monitor.estimate()
    assert (est.received, est.sent, est.lost) == (20, 47, 27)
    assert est.period_s == pytest.approx(0.1)
    assert is_lossy(est)
    advice = loss_advice(est, "/camera/image_raw")
    assert "20 of about 47" in advice and "10.0 Hz" in advice and "4.6 s" in advice
    assert "fastdds_large_images.xml" in advice and "reliability:=reliable" in advice


def test_skipping_every_third_frame_is_counted_but_not_lossy():
    # frames 0,1, 3,4, ..., 27,28: 20 arrived of 29; two thirds is more than half
    monitor = ArrivalMonitor()
    feed(monitor, [i for i in range(30) if i % 3 != 2])
    est = monitor.estimate()
    assert (est.received, est.sent) == (20, 29)
    assert not is_lossy(est)


def test_jittered_stamps_still_give_the_period():
    # up to ±4 ms of stamping jitter on a 100 ms period
    indices = [i for i in range(50) if i % 5 in (0, 1)]
    jitter = [(-4, 3, 0, -2, 4, 1, -3, 2, -1, 0)[n % 10] for n in range(len(indices))]
    monitor = ArrivalMonitor()
    feed(monitor, indices, jitter_ms=jitter)
    est = monitor.estimate()
    assert (est.received, est.sent) == (20, 47)
    assert est.period_s == pytest.approx(0.1, abs=0.002)


def test_out_of_order_and_repeated_stamps():
    # the 2-of-5 stream with neighbours swapped in arrival, and every 4th frame delivered twice
    indices = [i for i in range(50) if i % 5 in (0, 1)]
    swapped = [indices[n ^ 1] for n in range(len(indices))]
    monitor = ArrivalMonitor()
    for n, i in enumerate(swapped):
        monitor.add(BASE + i * 100 * MS, CLOCK + n * 250 * MS)
        if n % 4 == 0:
            monitor.add(BASE + i * 100 * MS, CLOCK + n * 250 * MS + MS)
    est = monitor.estimate()
    assert (est.received, est.sent) == (20, 47)


def test_a_stamp_jump_starts_a_new_window_instead_of_counting_loss():
    monitor = ArrivalMonitor()
    feed(monitor, range(20))
    # the camera restarts with its clock an hour ahead, 100 ms of wall time later: 10 more frames
    feed(monitor, range(10), base=BASE + 3600 * 1000 * MS, start=CLOCK + 2000 * MS)
    assert (monitor.estimate().received, monitor.estimate().sent) == (10, 10)
    # and back in time (a bag played again from its start)
    feed(monitor, range(8), start=CLOCK + 3100 * MS)
    assert (monitor.estimate().received, monitor.estimate().sent) == (8, 8)


def test_a_pause_of_the_camera_is_not_loss():
    # 10 frames, 5 s of silence on stamps and clock alike, 10 more
    monitor = ArrivalMonitor()
    feed(monitor, list(range(10)) + list(range(60, 70)))
    est = monitor.estimate()
    assert (est.received, est.sent) == (20, 20)


def test_only_the_window_counts():
    monitor = ArrivalMonitor(window_s=10.0)
    feed(monitor, range(301))  # 30 s at 10 Hz; the window keeps stamps 20.0 s .. 30.0 s
    est = monitor.estimate()
    assert (est.received, est.sent) == (101, 101)
    assert est.span_s == pytest.approx(10.0)


def test_too_few_frames_or_no_common_period_tell_nothing():
    monitor = ArrivalMonitor(min_frames=4)
    feed(monitor, [0, 3, 7])
    est = monitor.estimate()
    assert (est.received, est.sent, est.period_s) == (3, 3, None)
    assert not is_lossy(est)
    monitor.reset()
    assert monitor.estimate().received == 0
    monitor.add(0, CLOCK)  # unset stamps are ignored
    assert monitor.estimate().received == 0


def test_regular_sparse_arrivals_err_towards_no_loss():
    # every 3rd frame only: indistinguishable from a 3.3 Hz camera, so no loss is claimed
    monitor = ArrivalMonitor()
    feed(monitor, range(0, 60, 3))
    est = monitor.estimate()
    assert est.period_s == pytest.approx(0.3) and est.lost == 0


def test_common_period_of_hand_made_spacings():
    assert common_period([200 * MS, 300 * MS, 500 * MS]) == pytest.approx(100 * MS)
    assert common_period([100 * MS, 250 * MS]) == pytest.approx(50 * MS)  # 100 = 2×50, 250 = 5×50
    assert common_period([]) is None
    # 10 ms and 13.7 ms: 10 and 5 leave 13.7 too far from a multiple, 3.33 is below the 4 ms allowed
    assert common_period([10 * MS, 137 * MS // 10], min_period_ns=4 * MS) is None


def test_header_stamp_in_nanoseconds():
    from types import SimpleNamespace

    assert header_stamp_ns(SimpleNamespace(sec=3, nanosec=250_000_000)) == 3_250_000_000
