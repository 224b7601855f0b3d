"""Hands each processed frame's result to waiting readers (the find action, live capture)."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from std_msgs.msg import Header

from perovss_ros.core.types import FrameResult


@dataclass
class FrameEvent:
    """One processed frame: sequence number, the input's header and the pipeline's result."""

    seq: int
    header: Header
    result: FrameResult


class FrameHub:
    """Latest processed frame plus a condition to wait for the next one; no history is kept."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._latest: FrameEvent | None = None
        self._seq = 0
        self._closed = False

    @property
    def seq(self) -> int:
        """Sequence number of the latest frame (0 before the first)."""
        with self._cond:
            return self._seq

    def publish(self, header: Header, result: FrameResult) -> None:
        """Make ``result`` the latest frame and wake the readers."""
        with self._cond:
            self._seq += 1
            self._latest = FrameEvent(self._seq, header, result)
            self._cond.notify_all()

    def close(self) -> None:
        """Wake every reader; :meth:`wait_after` returns None from now on."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def reopen(self) -> None:
        """Accept readers again (after a re-activation)."""
        with self._cond:
            self._closed = False

    @property
    def closed(self) -> bool:
        """True after :meth:`close` (node deactivated)."""
        return self._closed

    def wait_after(self, seq: int, timeout: float) -> FrameEvent | None:
        """The latest frame if newer than ``seq``, waiting up to ``timeout`` s; None on timeout or close."""
        with self._cond:
            self._cond.wait_for(lambda: self._closed or self._seq > seq, timeout)
            if self._closed or self._seq <= seq:
                return None
            return self._latest
