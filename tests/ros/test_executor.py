"""NodeExecutor: a callback waiting for a busy pool is submitted once and still runs.

The same scenario on rclpy's MultiThreadedExecutor re-submits the waiting callback
thousands of times (the busy loop NodeExecutor exists for); that is checked too, so the
day a pinned rclpy no longer does it, the test says NodeExecutor can go.
"""

from __future__ import annotations

import _thread
import signal
import threading
import time

import pytest
import rclpy
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.executors import MultiThreadedExecutor
from std_msgs.msg import Empty

from perovss_ros.ros.executor import SPIN_WAKE_S, NodeExecutor

pytestmark = pytest.mark.ros


def _submits_while_pool_busy(executor_type: type, domain_id: int) -> tuple[int, bool]:
    """Block both pool threads, publish to a third subscription for 0.5 s; (pool submits, it ran after)."""
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain_id)
    node = rclpy.create_node("executor_test", context=context)
    executor = executor_type(num_threads=2, context=context)
    executor.add_node(node)
    submits = [0]
    submit = executor._executor.submit

    def counting_submit(*args, **kwargs):
        submits[0] += 1
        return submit(*args, **kwargs)

    executor._executor.submit = counting_submit
    started, release, ran = threading.Semaphore(0), threading.Event(), threading.Event()

    def block(_msg: Empty) -> None:
        started.release()
        release.wait(10)

    publishers = {}
    for topic, callback in (("block_a", block), ("block_b", block), ("waiting", lambda _m: ran.set())):
        node.create_subscription(Empty, topic, callback, 10, callback_group=MutuallyExclusiveCallbackGroup())
        publishers[topic] = node.create_publisher(Empty, topic, 10)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        publishers["block_a"].publish(Empty())
        publishers["block_b"].publish(Empty())
        assert started.acquire(timeout=10) and started.acquire(timeout=10), "the blocking callbacks never started"
        before = submits[0]
        publishers["waiting"].publish(Empty())
        time.sleep(0.5)
        assert not ran.is_set(), "both pool threads are busy: the callback must wait"
        waiting_submits = submits[0] - before
        release.set()
        return waiting_submits, ran.wait(10)
    finally:
        release.set()
        executor.shutdown(timeout_sec=2.0)
        rclpy.try_shutdown(context=context)
        spinner.join(5)


def test_node_executor_submits_a_waiting_callback_once_and_runs_it(ros_domain_id: int) -> None:
    submits, ran = _submits_while_pool_busy(NodeExecutor, ros_domain_id)
    assert submits <= 2, f"the waiting callback was submitted {submits} times"
    assert ran, "the waiting callback never ran once the pool was free"


def _raise_interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def test_spin_ends_on_an_interrupt_that_does_not_wake_its_wait(ros_domain_id: int) -> None:
    # ``interrupt_main`` runs a Python signal handler in this (main) thread without the signal reaching
    # the process, so nothing wakes rcl_wait: the spin loop must notice the KeyboardInterrupt by itself.
    # SIGUSR1, not SIGINT: the suite's SIGINT handling (rclpy's, pytest's) stays as it is.
    previous = signal.signal(signal.SIGUSR1, _raise_interrupt)
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=ros_domain_id)
    node = rclpy.create_node("executor_interrupt_test", context=context)
    executor = NodeExecutor(num_threads=2, context=context)
    executor.add_node(node)
    threading.Timer(0.3, _thread.interrupt_main, args=(signal.SIGUSR1,)).start()
    # Were the loop never to wake, shutting the context down 10 s on ends the test instead of hanging it.
    watchdog = threading.Timer(10.0, lambda: rclpy.try_shutdown(context=context))
    watchdog.start()
    tick = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            executor.spin()
            time.sleep(1.0)  # a spin that ended without the interrupt: let it arrive here, and fail on time
        assert time.monotonic() - tick < 0.3 + 2 * SPIN_WAKE_S + 1.0
    finally:
        watchdog.cancel()
        executor.shutdown(timeout_sec=2.0)
        rclpy.try_shutdown(context=context)
        signal.signal(signal.SIGUSR1, previous)


def test_rclpy_multithreaded_executor_still_busy_loops(ros_domain_id: int) -> None:
    submits, ran = _submits_while_pool_busy(MultiThreadedExecutor, ros_domain_id)
    assert ran
    assert submits > 50, f"rclpy submitted the waiting callback only {submits} times: NodeExecutor may be unneeded"
