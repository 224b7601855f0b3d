"""Fast DDS settings for camera-size images between processes (no rclpy import).

Fast DDS's default shared-memory segment is too small for 640×480 frames sent best
effort, and its TCP-based LARGE_DATA transport can deadlock on participant deletion
(Fast DDS 3.2). The shipped profile ``fastdds_large_images.xml`` keeps shared memory
and UDP and enlarges the segment; see the comment in that file.
"""

from __future__ import annotations

import os
from pathlib import Path

PROFILES_ENV = "FASTDDS_DEFAULT_PROFILES_FILE"
BUILTIN_ENV = "FASTDDS_BUILTIN_TRANSPORTS"
PROFILE_FILE = Path(__file__).with_name("fastdds_large_images.xml")


def large_image_profile() -> Path:
    """Path of the shipped Fast DDS profile for large images."""
    return PROFILE_FILE


def use_large_image_transport() -> None:
    """Point this process's Fast DDS (and its child processes') at the large-image profile.

    A transport the caller chose (a profiles file or ``FASTDDS_BUILTIN_TRANSPORTS``) is
    kept. Fast DDS reads the profiles file once per process, so call this before the first
    participant: the ``perovss`` entry point and the test session's conftest do.
    """
    if os.environ.get(PROFILES_ENV) or os.environ.get(BUILTIN_ENV):
        return
    os.environ[PROFILES_ENV] = str(PROFILE_FILE)
