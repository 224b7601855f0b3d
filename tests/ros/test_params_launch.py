"""Parameters: one set of names and defaults across the node, config/perovss.yaml and the launch file."""

from __future__ import annotations

import ast
import importlib.util

import pytest
import rclpy
import yaml
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.parameter import Parameter

from perovss_ros.ros.node import PerovssNode
from tests.ros.helpers import ROOT

YAML_PATH = ROOT / "config" / "perovss.yaml"
LAUNCH_PATH = ROOT / "launch" / "perovss.launch.py"


def _yaml_params() -> dict:
    with open(YAML_PATH, encoding="utf-8") as f:
        return yaml.safe_load(f)["/**"]["ros__parameters"]


def _launch_module():
    spec = importlib.util.spec_from_file_location("perovss_launch", LAUNCH_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # launch/launch_ros are imported only inside generate_launch_description
    return module


@pytest.fixture
def node(ros_domain_id: int):
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=ros_domain_id)
    node = PerovssNode(context=context)
    try:
        yield node
    finally:
        node.release()
        node.destroy_node()
        rclpy.try_shutdown(context=context)


def test_yaml_documents_every_declared_parameter(node: PerovssNode) -> None:
    documented = _yaml_params()
    declared = {name: node.get_parameter(name).value for name in documented if node.has_parameter(name)}
    assert declared == documented, "config/perovss.yaml and the node's defaults differ"
    ours = {n for n in node._parameters if n not in ("use_sim_time", "start_type_description_service")}
    assert ours == set(documented), "every node parameter is documented in config/perovss.yaml"
    text = YAML_PATH.read_text(encoding="utf-8")
    for name in documented:  # each key carries a comment line right above it
        lines = text.splitlines()
        idx = next(i for i, line in enumerate(lines) if line.strip().startswith(f"{name}:"))
        assert lines[idx - 1].strip().startswith("#"), f"{name} has no comment in the YAML"


def test_launch_arguments_mirror_the_parameters(node: PerovssNode) -> None:
    launch = _launch_module()
    args = launch.launch_arguments()
    assert [a[0] for a in args] == list(_yaml_params()), "one launch argument per parameter, YAML order"
    for name, default, description, choices in args:
        value = node.get_parameter(name).value
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        assert default == text, f"launch default of {name} differs from the node's"
        assert description
        if choices:
            assert value in choices
    # No default typed in the launch file itself: only the YAML and the params table feed it.
    tree = ast.parse(LAUNCH_PATH.read_text(encoding="utf-8"))
    literals = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    assert not {"vit_b", "best_effort", "classic"} & literals
    calls = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    assert "DeclareLaunchArgument" in calls and "Node" in calls


def test_reload_parameters_refused_while_configured(node: PerovssNode, tmp_path) -> None:
    node.set_parameters([Parameter("backend", value="classic"), Parameter("concept_store", value=str(tmp_path))])
    bad = node.set_parameters([Parameter("reliability", value="sometimes")])[0]
    assert not bad.successful and "best_effort" in bad.reason
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert node.pipeline is not None and node.pipeline.backend_name == "classic"
    refused = node.set_parameters([Parameter("backend", value="sam")])[0]
    assert not refused.successful and "configure" in refused.reason
    assert node.get_parameter("backend").value == "classic"
    live = node.set_parameters([Parameter("publish_overlay", value=False)])[0]
    assert live.successful
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    refused = node.set_parameters([Parameter("reliability", value="reliable")])[0]
    assert not refused.successful and "deactivate" in refused.reason
    assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
    assert node.set_parameters([Parameter("reliability", value="reliable")])[0].successful


def test_decode_size_reaches_the_classic_decoder(node: PerovssNode, tmp_path) -> None:
    node.set_parameters([Parameter("backend", value="classic"), Parameter("concept_store", value=str(tmp_path))])
    bad = node.set_parameters([Parameter("decode_size", value=8)])[0]
    assert not bad.successful and "decode_size" in bad.reason and ">= 16" in bad.reason
    assert node.get_parameter("decode_size").value == _yaml_params()["decode_size"]
    assert node.set_parameters([Parameter("decode_size", value=128)])[0].successful
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert node.pipeline.decoder.work_size == 128
    assert node.pipeline.identity_fit().decoder == "grabcut-128px-3it"
