"""The ROS-free layers import no ROS: core/, sim/ and the shared image-message decoder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ROS_PACKAGES = ("rclpy", "rcl_interfaces", "sensor_msgs", "std_msgs", "perovss_interfaces")


def test_core_sim_and_image_messages_load_no_ros() -> None:
    # A fresh interpreter: this one has rclpy loaded already by the ROS tests and conftest.
    code = (
        "import json, sys\n"
        "import perovss_ros.core, perovss_ros.core.pipeline, perovss_ros.image_messages\n"
        "import perovss_ros.sim.bags, perovss_ros.sim.scenes\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    loaded = set(json.loads(proc.stdout.splitlines()[-1]))
    assert "perovss_ros" in loaded and "cv2" in loaded
    assert loaded.isdisjoint(ROS_PACKAGES), sorted(loaded & set(ROS_PACKAGES))


def test_cli_parser_builds_without_ros() -> None:
    # `perovss bench core --device cuda` must run on a GPU machine that has no ROS: building the
    # parser imports every command's add_arguments.
    code = (
        "import sys\n"
        "for name in ('rclpy', 'perovss_interfaces'):\n"
        "    sys.modules[name] = None\n"
        "from perovss_ros import cli\n"
        "try:\n"
        "    cli.main(['bench', 'core', '--help'])\n"
        "except SystemExit as exc:\n"
        "    print('cv2 loaded' if 'cv2' in sys.modules else 'no cv2')\n"
        "    print('exit', exc.code)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "--part" in proc.stdout and proc.stdout.strip().endswith("exit 0")
    # Commands import their heavy modules when they run, not when the parser is built.
    assert "no cv2" in proc.stdout
