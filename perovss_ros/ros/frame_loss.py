"""Frames lost before they arrive: the camera's rate from header stamps against what arrives.

ROS-free (stamps in, counts out), so it is unit-tested on hand-made stamp sequences; the
node and ``perovss doctor --topic`` feed it.

A camera stamps its frames at a steady period ``T``. Every frame that reaches the
subscription carries its stamp, so the spacings between the stamps that did arrive are
whole multiples of ``T``: a spacing of ``3T`` means two frames were lost in between.
The period is estimated as the largest ``T`` of which every spacing in the window is a
whole multiple (within ``tolerance`` of a period): starting from the shortest spacing
``d`` it tries ``d, d/2, d/3, ...`` and refines the first that fits by least squares.
With irregular loss, as a transport that drops fragments of large messages gives, some
frames arrive back to back and ``T`` is found. Sparse or regular arrivals can fit a
multiple of ``T``; the estimate then errs towards fewer lost frames, never more.

Stamps that go back in time or jump ahead much further than the wall clock moved (a
camera or bag restarting, a clock reset) start a new window instead of counting as
loss. A silence longer than ``max_gap_s`` is taken for a pause of the camera, not for
loss: a transport that drops frames lets some through. A stamp seen twice counts once;
stamps arriving out of order are sorted.
"""

from __future__ import annotations

import bisect
import itertools
import threading
from dataclasses import dataclass

from perovss_ros.ros.transport import PROFILE_FILE, PROFILES_ENV

NS = 1_000_000_000


@dataclass(frozen=True)
class ArrivalEstimate:
    """Frames over the window's stamps: ``received`` distinct ones arrived, ``sent`` estimated.

    ``period_s`` is the camera's estimated frame period, None while it cannot be told (too few
    frames, or spacings with no common period); ``sent`` then equals ``received``. ``span_s`` is
    the time from the first to the last stamp counted.
    """

    received: int
    sent: int
    period_s: float | None
    span_s: float

    @property
    def lost(self) -> int:
        """Frames sent but not arrived (estimate, >= 0)."""
        return max(0, self.sent - self.received)

    @property
    def arrived_fraction(self) -> float:
        """``received / sent`` (1.0 when nothing is known)."""
        return self.received / self.sent if self.sent else 1.0

    @property
    def rate_hz(self) -> float | None:
        """The camera's estimated frame rate."""
        return 1.0 / self.period_s if self.period_s else None


def header_stamp_ns(stamp: object) -> int:
    """A ``builtin_interfaces/Time`` (anything with ``sec`` and ``nanosec``) in nanoseconds."""
    return int(stamp.sec) * NS + int(stamp.nanosec)


def common_period(spacings_ns: list[int], tolerance: float = 0.2, min_period_ns: int = NS // 240,
                  max_multiple: int = 32) -> float | None:
    """Largest period (ns) of which every positive spacing is a whole multiple, or None.

    ``tolerance`` is the largest allowed distance from a whole multiple, in periods; periods
    shorter than ``min_period_ns`` (a camera faster than 240 Hz by default), or than the
    shortest spacing over ``max_multiple``, are not tried (they would fit almost anything).
    """
    spacings = sorted(d for d in spacings_ns if d > 0)
    if not spacings:
        return None
    shortest = spacings[0]
    k = 1
    while k <= max_multiple and shortest / k >= min_period_ns:
        period = _fit(spacings, shortest / k, tolerance)
        if period is not None:
            return period
        k += 1
    return None


def _fit(spacings: list[int], guess: float, tolerance: float) -> float | None:
    """``guess`` refined over ``spacings`` (ascending) if each is a whole multiple of it, else None.

    Short spacings come first so that the period is refined before the long ones, whose
    multiple would otherwise be misjudged from the jitter of the first spacing alone.
    """
    period, total, count = guess, 0.0, 0
    for spacing in spacings:
        multiple = round(spacing / period)
        if multiple < 1 or abs(spacing - multiple * period) > tolerance * period:
            return None
        total += spacing
        count += multiple
        period = total / count
    return period


class ArrivalMonitor:
    """Collects ``(header stamp, arrival time)`` of the frames that arrive; thread-safe.

    ``window_s`` seconds of stamps are kept. ``min_frames`` distinct frames, spaced at most
    ``max_gap_s`` apart, are needed before a period is estimated; longer spacings are pauses
    (neither fitted nor counted as loss). A stamp whose step from the previous arrival differs
    from the wall clock's step by more than ``max_skew_s`` (plus half the wall-clock step, for
    sim time or a bag played at another rate) starts a new window.
    """

    def __init__(self, window_s: float = 10.0, min_frames: int = 4, tolerance: float = 0.2,
                 max_skew_s: float = 1.0, max_gap_s: float = 2.0):
        if window_s <= 0 or min_frames < 2 or max_gap_s <= 0:
            raise ValueError("window_s and max_gap_s must be > 0 and min_frames >= 2")
        self.window_s = float(window_s)
        self.min_frames = int(min_frames)
        self.tolerance = float(tolerance)
        self.max_skew_s = float(max_skew_s)
        self.max_gap_s = float(max_gap_s)
        self._lock = threading.Lock()
        self._stamps: list[int] = []  # sorted, distinct, ns
        self._last: tuple[int, int] | None = None  # (stamp, arrival) of the latest arrival

    def add(self, stamp_ns: int, arrival_ns: int) -> None:
        """Record a frame stamped ``stamp_ns`` that arrived at ``arrival_ns`` (a local monotonic clock).

        Stamps <= 0 (unset by the publisher) are ignored: they say nothing about the rate.
        """
        if stamp_ns <= 0:
            return
        with self._lock:
            if self._last is not None and self._jumped(stamp_ns, arrival_ns):
                self._stamps.clear()
            self._last = (stamp_ns, arrival_ns)
            at = bisect.bisect_left(self._stamps, stamp_ns)
            if at == len(self._stamps) or self._stamps[at] != stamp_ns:
                self._stamps.insert(at, stamp_ns)
            oldest = self._stamps[-1] - int(self.window_s * NS)
            del self._stamps[:bisect.bisect_left(self._stamps, oldest)]

    def _jumped(self, stamp_ns: int, arrival_ns: int) -> bool:
        last_stamp, last_arrival = self._last
        stamp_step = (stamp_ns - last_stamp) / NS
        clock_step = max(0.0, (arrival_ns - last_arrival) / NS)
        return abs(stamp_step - clock_step) > self.max_skew_s + 0.5 * clock_step

    def reset(self) -> None:
        """Forget every stamp (a new stream)."""
        with self._lock:
            self._stamps.clear()
            self._last = None

    def estimate(self) -> ArrivalEstimate:
        """Received and estimated sent frames over the window's stamps."""
        with self._lock:
            stamps = list(self._stamps)
        received = len(stamps)
        span_s = (stamps[-1] - stamps[0]) / NS if stamps else 0.0
        unknown = ArrivalEstimate(received, received, None, span_s)
        spacings = [b - a for a, b in itertools.pairwise(stamps)]
        streaming = [d for d in spacings if d <= self.max_gap_s * NS]
        if len(streaming) < self.min_frames - 1:
            return unknown
        period = common_period(streaming, self.tolerance)
        if period is None:
            return unknown
        sent = received + sum(round(d / period) - 1 for d in streaming)
        return ArrivalEstimate(received, sent, period / NS, span_s)


def loss_advice(estimate: ArrivalEstimate, topic: str) -> str:
    """The warning for a stream where fewer than half the frames arrive: what was seen, and the fixes."""
    rate = f"{estimate.rate_hz:.1f}" if estimate.rate_hz else "?"
    return (
        f"frames are lost before they reach perovss: on '{topic}' the header stamps say the camera "
        f"sends about {rate} Hz, but only {estimate.received} of about {estimate.sent} frames arrived "
        f"over {estimate.span_s:.1f} s of stamps. Large images over Fast DDS's default transports are "
        f"dropped between processes: start the camera (and every node) with "
        f"{PROFILES_ENV}={PROFILE_FILE} (the shipped profile; README 'Large images'), or publish "
        f"reliably and set the parameter reliability:=reliable"
    )


#: A stream is reported as lossy when fewer than this fraction of its frames arrive...
LOSSY_FRACTION = 0.5
#: ...over at least this many frames sent (fewer are too little evidence).
MIN_SENT = 10


def is_lossy(estimate: ArrivalEstimate) -> bool:
    """Whether fewer than half the frames arrive, on enough evidence to say so."""
    return (estimate.period_s is not None and estimate.sent >= MIN_SENT
            and estimate.arrived_fraction < LOSSY_FRACTION)
