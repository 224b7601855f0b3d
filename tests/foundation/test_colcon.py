"""ros2_ws builds with colcon (both packages) into a temporary install base."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COLCON = Path(sys.executable).with_name("colcon")

pytestmark = pytest.mark.slow


def test_colcon_builds_both_packages(tmp_path: Path) -> None:
    install = tmp_path / "install"
    cmd = [
        str(COLCON), "--log-base", str(tmp_path / "log"), "build",
        "--base-paths", str(ROOT / "ros2_ws" / "src"),
        "--build-base", str(tmp_path / "build"), "--install-base", str(install),
        "--cmake-args", "-DBUILD_TESTING=OFF", f"-DPython3_EXECUTABLE={sys.executable}",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]

    site = install / "perovss_interfaces" / "lib" / "python3.11" / "site-packages"
    assert (install / "perovss_ros" / "lib" / "perovss_ros" / "perovss").is_file()
    assert (install / "perovss_ros" / "share" / "perovss_ros" / "package.xml").is_file()
    assert (install / "perovss_ros" / "share" / "ament_index" / "resource_index" / "packages" / "perovss_ros").is_file()

    # The freshly built interfaces import from the install base, not from the venv.
    env = dict(os.environ, PYTHONPATH=str(site),
               LD_LIBRARY_PATH=os.pathsep.join([str(install / "perovss_interfaces" / "lib"),
                                                os.environ.get("LD_LIBRARY_PATH", "")]))
    env.pop("_ROS_WHEELS_BOOTSTRAP_COMPLETE", None)
    probe = ("import perovss_interfaces.msg as m, perovss_interfaces.srv as s; "
             "print(m.__file__); print(s.Teach.Request().get_fields_and_field_types()['boxes'])")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.split()
    assert lines[0].startswith(str(site))
    assert lines[1] == "sequence<sensor_msgs/RegionOfInterest>"
