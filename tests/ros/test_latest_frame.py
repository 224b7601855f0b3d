"""Latest-frame-first worker: no queue, newest item wins, drops counted, errors survived."""

from __future__ import annotations

import threading
import time

from perovss_ros.ros.latest_frame import LatestFrameWorker


def test_slow_handler_sees_newest_and_counts_drops() -> None:
    handled: list[int] = []
    gate = threading.Event()

    def handler(item: int) -> None:
        gate.wait(5)
        handled.append(item)

    worker: LatestFrameWorker[int] = LatestFrameWorker(handler)
    worker.start()
    try:
        worker.submit(0)
        time.sleep(0.1)  # the worker is now blocked inside handler(0)
        replaced = [worker.submit(i) for i in range(1, 50)]
        gate.set()
        assert worker.wait_idle(5)
    finally:
        worker.stop()
    assert handled == [0, 49], "only the item in hand and the newest one may be handled"
    assert replaced == [False] + [True] * 48
    stats = worker.stats
    assert (stats.submitted, stats.processed, stats.dropped) == (50, 2, 48)


def test_errors_do_not_stop_the_worker() -> None:
    errors: list[tuple[int, str]] = []
    handled: list[int] = []

    def handler(item: int) -> None:
        if item == 1:
            raise ValueError("bad frame")
        handled.append(item)

    worker: LatestFrameWorker[int] = LatestFrameWorker(handler, on_error=lambda i, e: errors.append((i, str(e))))
    worker.start()
    try:
        for i in range(3):
            worker.submit(i)
            assert worker.wait_idle(5)
    finally:
        worker.stop()
    assert handled == [0, 2]
    assert errors == [(1, "bad frame")]
    assert worker.stats.failed == 1 and worker.stats.processed == 2


def test_stop_discards_waiting_item() -> None:
    gate = threading.Event()
    handled: list[int] = []
    worker: LatestFrameWorker[int] = LatestFrameWorker(lambda i: (gate.wait(5), handled.append(i)))
    worker.start()
    worker.submit(0)
    time.sleep(0.1)
    worker.submit(1)
    gate.set()
    worker.stop()
    assert 1 not in handled
    assert not worker.running
