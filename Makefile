# perovss: two commands do everything on a fresh machine: `make demo`, `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
# Each pytest run gets its own DDS domain unless the caller picks one.
export ROS_DOMAIN_ID ?= 42

.PHONY: venv demo test lint clean

venv:
	@bash tools/setup_venv.sh

demo: venv
	$(VENV)/bin/perovss demo

test: venv
	$(PY) -m pytest $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check perovss_ros tests launch tools

clean:
	rm -rf $(VENV) build install log ros2_ws/build ros2_ws/install ros2_ws/log demo_out
