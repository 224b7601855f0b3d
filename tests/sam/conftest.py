"""Fixtures shared by the SAM tests."""

from __future__ import annotations

import pytest

from perovss_ros.core.sam.graph_cache import GRAPH_DIR_ENV


@pytest.fixture(autouse=True)
def graph_dir(tmp_path_factory, monkeypatch):
    """Exported encoder graphs go to a fresh directory per test, never to the user's cache."""
    directory = tmp_path_factory.mktemp("graphs")
    monkeypatch.setenv(GRAPH_DIR_ENV, str(directory))
    return directory
