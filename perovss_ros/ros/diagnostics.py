"""Per-frame statistics of the node and their /diagnostics message."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Mapping

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from std_msgs.msg import Header


class StreamStats:
    """Rolling window of per-frame timings (seconds) and the frame rate; thread-safe."""

    def __init__(self, window: int = 100):
        self._lock = threading.Lock()
        self._stages: dict[str, deque[float]] = {}
        self._window = window
        self._stamps: deque[float] = deque(maxlen=window)

    def record(self, timings: Mapping[str, float]) -> None:
        """Add one processed frame's timings (stage name → seconds)."""
        with self._lock:
            self._stamps.append(time.monotonic())
            for name, value in timings.items():
                self._stages.setdefault(name, deque(maxlen=self._window)).append(float(value))

    def medians(self) -> dict[str, float]:
        """Median seconds per stage over the window."""
        with self._lock:
            return {k: float(np.median(v)) for k, v in self._stages.items() if v}

    def fps(self) -> float:
        """Processed frames per second over the window (0 with fewer than two frames)."""
        with self._lock:
            if len(self._stamps) < 2:
                return 0.0
            span = self._stamps[-1] - self._stamps[0]
            return (len(self._stamps) - 1) / span if span > 0 else 0.0


def build_diagnostics(
    header: Header,
    name: str,
    hardware_id: str,
    values: Mapping[str, object],
    stats: StreamStats,
    level: bytes = DiagnosticStatus.OK,
    message: str = "running",
) -> DiagnosticArray:
    """One DiagnosticStatus with ``values`` plus fps and median stage timings (ms)."""
    pairs = [KeyValue(key=str(k), value=str(v)) for k, v in values.items()]
    pairs.append(KeyValue(key="fps", value=f"{stats.fps():.2f}"))
    for stage, seconds in sorted(stats.medians().items()):
        pairs.append(KeyValue(key=f"median_ms.{stage}", value=f"{seconds * 1e3:.2f}"))
    status = DiagnosticStatus(level=level, name=name, message=message, hardware_id=hardware_id, values=pairs)
    return DiagnosticArray(header=header, status=[status])
