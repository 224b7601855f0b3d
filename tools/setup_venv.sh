#!/usr/bin/env bash
# Create or refresh .venv: pinned wheels, perovss_interfaces built with CMake into
# the venv (the venv is the ROS prefix), the project installed editable.
# Idempotent: a stamp keyed on the requirement and interface files skips all work
# when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV=${VENV:-$ROOT/.venv}
PYTHON=${PYTHON:-python3.11}
STAMP=$VENV/.perovss-stamp

stamp_key() {
  {
    "$PYTHON" --version 2>&1
    cat requirements.txt requirements.lock setup.py setup.cfg pyproject.toml package.xml tools/setup_venv.sh
    find ros2_ws/src/perovss_interfaces -type f \( -name '*.msg' -o -name '*.srv' -o -name '*.action' \
      -o -name CMakeLists.txt -o -name package.xml \) -print0 | sort -z | xargs -0 cat
  } | sha256sum | cut -d' ' -f1
}

KEY=$(stamp_key)
if [[ -x $VENV/bin/python && -f $STAMP && $(cat "$STAMP") == "$KEY" ]]; then
  echo "venv: up to date ($VENV)"
  exit 0
fi

t0=$(date +%s)
if [[ ! -x $VENV/bin/python ]]; then
  # A new venv is about 5.3 GB (torch's CUDA build and its libraries): say so plainly
  # rather than let pip die half-way with "No space left on device".
  NEED_MB=5600
  FREE_MB=$(df -Pm "$(dirname "$VENV")" | awk 'NR==2 {print $4}')
  if (( FREE_MB < NEED_MB )); then
    echo "venv: only $FREE_MB MB free under $(dirname "$VENV"); a new venv needs about $NEED_MB MB"
    exit 1
  fi
  echo "venv: creating $VENV with $PYTHON"
  "$PYTHON" -m venv "$VENV"
fi
rm -f "$STAMP"

# requirements.lock is requirements.txt resolved (tools/lock_requirements.sh): every
# distribution pinned, so --no-deps installs exactly it and nothing it leaves out.
echo "venv: installing pinned requirements (requirements.lock)"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r requirements.lock 2>&1 \
  | { grep -v "^WARNING: Location .* is ignored" || true; }
[[ ${PIPESTATUS[0]} -eq 0 ]] || { echo "venv: pip install failed"; exit 1; }

# Lets ament_index find packages in the venv and tells tools where the ROS prefix
# is, in every Python process of the venv (a .pth runs before the program).
SITE=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
cat > "$SITE/perovss_ros_env.pth" <<'PTH'
import os, sys; os.environ["AMENT_PREFIX_PATH"] = os.pathsep.join(dict.fromkeys([sys.prefix] + [p for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]))
PTH

echo "venv: building perovss_interfaces with CMake"
BUILD=$VENV/build/perovss_interfaces
mkdir -p "$BUILD"
cmake -S ros2_ws/src/perovss_interfaces -B "$BUILD" \
  -DCMAKE_PREFIX_PATH="$VENV" -DCMAKE_INSTALL_PREFIX="$VENV" \
  -DPython3_EXECUTABLE="$VENV/bin/python" -DBUILD_TESTING=OFF >"$BUILD.log" 2>&1 \
  || { tail -40 "$BUILD.log"; echo "venv: CMake configure of perovss_interfaces failed (log: $BUILD.log)"; exit 1; }
cmake --build "$BUILD" -j"$(nproc)" >>"$BUILD.log" 2>&1 \
  || { tail -40 "$BUILD.log"; echo "venv: build of perovss_interfaces failed (log: $BUILD.log)"; exit 1; }
cmake --install "$BUILD" >>"$BUILD.log" 2>&1

echo "venv: installing perovss_ros (editable)"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .

"$VENV/bin/python" -c 'import rclpy, perovss_interfaces.msg, perovss_ros, torch, cv2, segment_anything' \
  || { echo "venv: import check failed"; exit 1; }
echo "$KEY" > "$STAMP"
echo "venv: ready in $(( $(date +%s) - t0 )) s ($VENV, $(du -sh "$VENV" | cut -f1))"
