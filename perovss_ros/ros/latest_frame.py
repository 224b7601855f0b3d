"""Latest-frame-first worker: one slot, no queue.

A camera faster than the model must not build a backlog: while the worker handles
one item, a newer item replaces the one waiting in the slot (the replaced one is
counted as dropped). Latency stays bounded by one handling time plus one frame
interval, whatever the input rate.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass
class WorkerStats:
    """Counters of a :class:`LatestFrameWorker` (monotonic since start)."""

    submitted: int = 0
    processed: int = 0
    dropped: int = 0
    failed: int = 0


class LatestFrameWorker(Generic[T]):
    """Runs ``handler(item)`` on a background thread for the newest submitted item.

    ``on_error(item, exc)`` is called when the handler raises; the worker goes on.
    ``submit`` never blocks on the handler.
    """

    def __init__(
        self,
        handler: Callable[[T], None],
        on_error: Callable[[T, BaseException], None] | None = None,
        name: str = "perovss-latest-frame",
    ):
        self._handler = handler
        self._on_error = on_error
        self._name = name
        self._cond = threading.Condition()
        self._slot: T | None = None
        self._has_item = False
        self._running = False
        self._busy = False
        self._thread: threading.Thread | None = None
        self.stats = WorkerStats()

    def start(self) -> None:
        """Start the worker thread (idempotent)."""
        with self._cond:
            if self._running:
                return
            self._running = True
        self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = 5.0) -> None:
        """Stop after the item being handled (the waiting one is discarded); joins the thread."""
        with self._cond:
            self._running = False
            if self._has_item:
                self.stats.dropped += 1
            self._slot, self._has_item = None, False
            self._cond.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        self._thread = None

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._running

    def submit(self, item: T) -> bool:
        """Offer ``item``; returns True if it replaced a waiting (now dropped) item."""
        with self._cond:
            self.stats.submitted += 1
            replaced = self._has_item
            if replaced:
                self.stats.dropped += 1
            self._slot, self._has_item = item, True
            self._cond.notify()
            return replaced

    def wait_idle(self, timeout: float) -> bool:
        """Block until nothing is waiting or being handled; returns False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._has_item and not self._busy, timeout)

    def _loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._has_item or not self._running)
                if not self._running:
                    return
                item, self._slot, self._has_item = self._slot, None, False
                self._busy = True
            try:
                self._handler(item)  # type: ignore[arg-type]
                ok = True
            except Exception as exc:  # the stream must survive one bad frame
                ok = False
                if self._on_error is not None:
                    with contextlib.suppress(Exception):  # a failing reporter must not kill the worker
                        self._on_error(item, exc)  # type: ignore[arg-type]
            with self._cond:
                self._busy = False
                if ok:
                    self.stats.processed += 1
                else:
                    self.stats.failed += 1
                self._cond.notify_all()
