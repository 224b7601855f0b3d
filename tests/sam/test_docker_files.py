"""The docker files agree with the repository (the images themselves cannot be built here: no Docker engine)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROFILE_IN_IMAGE = "/ws/src/perovss/perovss_ros/ros/fastdds_large_images.xml"


@pytest.mark.parametrize("compose, dockerfile", [("compose.cuda.yaml", "Dockerfile.cuda"),
                                                  ("compose.jetson.yaml", "Dockerfile.jetson")])
def test_compose_file_has_camera_shm_profile_and_engine_volume(compose: str, dockerfile: str) -> None:
    spec = yaml.safe_load((ROOT / "docker" / compose).read_text())
    service = spec["services"]["perovss"]
    assert service["build"]["dockerfile"] == f"docker/{dockerfile}"
    assert (ROOT / "docker" / dockerfile).is_file()
    assert any(d.endswith(":/dev/video0") for d in service["devices"])
    assert service["shm_size"] == "1gb"
    assert service["environment"]["FASTDDS_DEFAULT_PROFILES_FILE"] == PROFILE_IN_IMAGE
    assert (ROOT / PROFILE_IN_IMAGE.removeprefix("/ws/src/perovss/")).is_file()
    assert "perovss_engines:/root/.cache/perovss/engines" in service["volumes"]
    text = (ROOT / "docker" / dockerfile).read_text()
    assert 'ENTRYPOINT ["/ws/src/perovss/docker/entrypoint.sh"]' in text
    assert "LARGE_DATA" not in text.replace("LARGE_DATA's TCP", "")  # the profile, not the TCP transport


def test_entrypoint_builds_engines_only_into_an_empty_cache() -> None:
    script = (ROOT / "docker" / "entrypoint.sh").read_text()
    assert subprocess.run(["bash", "-n", str(ROOT / "docker" / "entrypoint.sh")]).returncode == 0
    assert 'compgen -G "${PEROVSS_ENGINE_DIR}/*.engine"' in script
    assert "perovss_ros.cli engines build" in script and script.rstrip().endswith('exec "$@"')
