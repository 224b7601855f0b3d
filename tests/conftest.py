"""Shared test fixtures."""

from __future__ import annotations

import itertools
import os

import pytest

from perovss_ros.ros.transport import use_large_image_transport

# Before any participant exists: Fast DDS reads its profiles file once per process.
use_large_image_transport()

_domain_ids = itertools.count()


def next_ros_domain_id() -> int:
    """A ROS_DOMAIN_ID no other test in this run (or a parallel run) uses.

    Domains 1..101 are spread by process id so that two pytest runs on one
    machine do not cross-talk; within a run each call gets the next id.
    """
    base = (os.getpid() * 7) % 50
    return 1 + (base + next(_domain_ids) * 53) % 101


@pytest.fixture
def ros_domain_id() -> int:
    """A fresh ROS_DOMAIN_ID for the processes one test starts."""
    return next_ros_domain_id()


@pytest.fixture(autouse=True, scope="session")
def _graph_cache_in_a_temporary_directory(tmp_path_factory):
    """Encoder graphs exported by tests go to a temporary directory, never the user's cache.

    The default ``runtime: auto`` runs the SAM encoder from an exported graph on a CPU, so any
    test that builds a sam pipeline exports one; node processes started by tests inherit this.
    (``PEROVSS_GRAPH_DIR`` is ``graph_cache.GRAPH_DIR_ENV``; tests/sam gives each test its own.)
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PEROVSS_GRAPH_DIR", str(tmp_path_factory.mktemp("graphs")))
        yield
