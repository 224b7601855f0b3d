"""The node's executor: rclpy's MultiThreadedExecutor without its busy loop on queued callbacks.

rclpy 9's MultiThreadedExecutor hands each ready callback to its thread pool as a Task,
and on the next turn yields every Task the pool has not *started* yet again, without
waiting, and submits it again. While the pool threads wait for the GIL (the frame
worker holds it between native calls) the spinning thread re-submits the same Tasks
thousands of times a second, holding the GIL itself: under a 30 Hz camera it took ~80%
of a core and slowed frame processing several-fold (`perovss bench node`). This executor
submits a Task once and, while it is still queued, waits briefly for the pool instead.
It overrides ``_spin_once_impl``, a private method; rclpy is pinned in requirements.txt.

``spin`` also wakes every ``SPIN_WAKE_S`` when nothing is ready. Two fresh-clone suite runs saw a
node not exit on SIGINT (after a CLEANUP and a CONFIGURE); its stacks showed the main thread still
waiting in ``rcl_wait``, so the wake-up of the wait never came. With a bounded wait the spin loop
sees a context that was shut down, and a SIGINT that Python delivers as KeyboardInterrupt, within
that time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from rclpy.executors import (
    ConditionReachedException,
    ExternalShutdownException,
    MultiThreadedExecutor,
    ShutdownException,
    TimeoutException,
)

#: Longest wait for the pool to start a queued callback before looking for other work (s).
QUEUED_WAIT_S = 0.005
#: Longest wait for work before the spin loop checks for shutdown again (s).
SPIN_WAKE_S = 0.5


class NodeExecutor(MultiThreadedExecutor):
    """A MultiThreadedExecutor that submits each callback Task to its pool exactly once."""

    def __init__(self, num_threads: int | None = None, *, context=None) -> None:
        super().__init__(num_threads=num_threads, context=context)
        self._queued: set[object] = set()
        self._queued_lock = threading.Lock()
        self._pool_started = threading.Event()
        #: Tasks handed to the pool (for tests and diagnostics).
        self.submitted = 0

    def spin(self) -> None:
        """Execute callbacks until shutdown, looking for shutdown at least every ``SPIN_WAKE_S``."""
        while self._context.ok() and not self._is_shutdown:
            self.spin_once(timeout_sec=SPIN_WAKE_S)

    def _spin_once_impl(self, timeout_sec=None, wait_condition: Callable[[], bool] = lambda: False) -> None:
        try:
            handler, _entity, _node = self.wait_for_ready_callbacks(timeout_sec, None, wait_condition)
        except (ExternalShutdownException, ShutdownException, TimeoutException, ConditionReachedException):
            return
        with self._queued_lock:
            queued = handler in self._queued
            if not queued:
                self._queued.add(handler)
        if queued:
            # Re-yielded while still waiting in the pool's queue: let the pool get to it.
            self._pool_started.wait(QUEUED_WAIT_S)
            self._pool_started.clear()
            return
        self.submitted += 1
        self._executor.submit(self._start, handler)
        self._futures.append(handler)
        for task in self._futures[:]:
            if task.done():
                self._futures.remove(task)
                task.result()  # raise any exception of the callback, as the parent does

    def _start(self, handler: Callable[[], object]) -> None:
        with self._queued_lock:
            self._queued.discard(handler)
        self._pool_started.set()
        handler()
