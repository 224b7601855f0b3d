"""Process-level helpers for the ROS tests: start the node, talk to it from this process."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

from perovss_ros.ros.client import NodeUnavailableError, PerovssClient

ROOT = Path(__file__).resolve().parents[2]
#: Nodes (``perovss node``) this test process started, with their logs: an unanswered call reports where
#: each one is.
_STARTED: list[tuple[subprocess.Popen, Path]] = []


def ros_env(domain_id: int) -> dict[str, str]:
    """Environment for a ROS child process on ``domain_id`` (the large-image transport comes from conftest)."""
    env = dict(os.environ)
    env.update(ROS_DOMAIN_ID=str(domain_id), PYTHONUNBUFFERED="1", RCUTILS_LOGGING_BUFFERED_STREAM="0",
               PYTHONFAULTHANDLER="1")
    return env


def start_perovss(domain_id: int, args: list[str], log: Path) -> subprocess.Popen:
    """Run ``python -m perovss_ros.cli ARGS`` with stdout+stderr into ``log``."""
    handle = open(log, "w")  # noqa: SIM115 - closed by the OS when the child exits; read via the path
    proc = subprocess.Popen([sys.executable, "-m", "perovss_ros.cli", *args], cwd=ROOT,
                            env=ros_env(domain_id), stdout=handle, stderr=subprocess.STDOUT)
    if args[:1] == ["node"]:  # only the node prints its stacks on STACKS_SIGNAL; it would end the others
        _STARTED[:] = [*_STARTED[-7:], (proc, log)]
    return proc


def where_everyone_is() -> str:
    """The stacks of every running node this process started (``STACKS_SIGNAL``) and of this process,
    and the end of the log of one that ended without being stopped (``stop``).

    For the failure message of a call nobody answered: was the node busy in a callback, idle in its
    wait, dead, or was the answer lost on this side? The running nodes keep running."""
    from perovss_ros.ros.main import STACKS_SIGNAL

    def written_since(log: Path, start: int) -> str:
        return log.read_bytes()[start:].decode(errors="replace") if log.exists() else ""

    parts = []
    for proc, log in _STARTED:
        if proc.poll() is not None:  # it ended: how, and its last words
            parts.append(f"--- node pid {proc.pid} ({log.name}) exited with {proc.returncode}; its log ends:\n"
                         + written_since(log, 0)[-4000:])
            continue
        start = log.stat().st_size if log.exists() else 0
        proc.send_signal(STACKS_SIGNAL)
        wait_for(lambda log=log, start=start: "Thread 0x" in written_since(log, start), 5, step=0.1)
        time.sleep(0.5)  # the rest of the dump
        parts.append(f"--- node pid {proc.pid} ({log.name}), stacks on request:\n"
                     + written_since(log, start)[-6000:])
    names = {t.ident: t.name for t in threading.enumerate()}
    for ident, frame in sys._current_frames().items():
        parts.append(f"--- this process, thread {names.get(ident, ident)}:\n"
                     + "".join(traceback.format_stack(frame)[-8:]))
    return "\n".join(parts)


def stop(proc: subprocess.Popen, timeout: float = 20.0, dump: bool = False) -> int:
    """SIGINT (SIGABRT with ``dump``: the stacks go to the log), then SIGKILL; returns the exit code.

    A node exits within a few seconds of SIGINT; ``timeout`` leaves room for a suite that loads
    both cores (one fresh-clone run saw a node take over 10 s after a CONFIGURE, another over 20 s
    after a CLEANUP and CONFIGURE). A node still running after SIGINT gets SIGABRT before SIGKILL,
    so its stacks (``PYTHONFAULTHANDLER``) are in its log for the failure message."""
    _STARTED[:] = [(p, log) for p, log in _STARTED if p is not proc]
    if proc.poll() is None:
        proc.send_signal(signal.SIGABRT if dump else signal.SIGINT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            if not dump:
                proc.send_signal(signal.SIGABRT)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(5)
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
    return proc.returncode


def node_cmd(store: Path, *params: str, autostart: bool = True) -> list[str]:
    """``node --ros-args`` with the documented params file, classic backend and ``store``."""
    cmd = ["node", "--ros-args", "--params-file", str(ROOT / "config" / "perovss.yaml"),
           "-p", "backend:=classic", "-p", f"concept_store:={store}"]
    if not autostart:
        cmd += ["-p", "autostart:=false"]
    for p in params:
        cmd += ["-p", p]
    return cmd


def wait_for(predicate: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    """Poll ``predicate`` until true or ``timeout`` s pass."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def _probes() -> dict[type, object]:
    """A side-effect-free request per service type, to prove the round trip before a real call."""
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState, GetState
    from perovss_interfaces.srv import Forget, ListConcepts, SetVocabulary, Teach
    from rcl_interfaces.srv import SetParameters

    return {
        Teach: Teach.Request(), Forget: Forget.Request(), ListConcepts: ListConcepts.Request(),
        SetVocabulary: SetVocabulary.Request(labels=[""]), GetState: GetState.Request(),
        ChangeState: ChangeState.Request(transition=Transition(id=99)),  # no such transition: refused
        SetParameters: SetParameters.Request(),
    }


class RosHarness(PerovssClient):
    """This test process's side: a PerovssClient whose node also carries the test's topics."""

    def __init__(self, domain_id: int, name: str = "perovss_test"):
        super().__init__("/perovss", domain_id=domain_id, name=name, background=True)
        self._probes = _probes()

    def call(self, srv_type: type, name: str, request: object, timeout: float = 60.0, probe: object = None):
        """Call a service once, after proving the round trip with the type's harmless probe."""
        with _unanswered_fails_the_test():
            return super().call(srv_type, name, request, timeout, probe=probe or self._probes[srv_type])

    def find(self, *args, **kwargs):
        """PerovssClient.find; an unanswered goal fails the test with everyone's stacks."""
        with _unanswered_fails_the_test():
            return super().find(*args, **kwargs)


@contextlib.contextmanager
def _unanswered_fails_the_test():
    """A NodeUnavailableError becomes the test's failure, with where every process was (``where_everyone_is``)."""
    try:
        yield
    except NodeUnavailableError as exc:
        raise AssertionError(f"{exc}\n{where_everyone_is()}") from None


def reliable(depth: int = 10) -> QoSProfile:
    """Reliable keep-last QoS for test publishers/subscribers."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=ReliabilityPolicy.RELIABLE)
