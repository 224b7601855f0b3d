"""Launch the perovss node on a system ROS 2 install.

    ros2 launch perovss_ros perovss.launch.py image:=/camera/color/image_raw backend:=classic

One launch argument per node parameter: defaults come from config/perovss.yaml
(never typed twice), descriptions and choices from perovss_ros.ros.params.
`image` remaps the camera topic, `namespace` places the node.
"""

from __future__ import annotations

from pathlib import Path

import yaml

# Installed: share/perovss_ros/{launch,config}; source tree: {launch,config} at the root.
CONFIG = Path(__file__).resolve().parent.parent / "config" / "perovss.yaml"


def yaml_defaults(path: Path = CONFIG) -> dict:
    """``{parameter: default}`` from the node's documented parameter file."""
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)["/**"]["ros__parameters"]


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def launch_arguments() -> list[tuple[str, str, str, tuple[str, ...]]]:
    """``(name, default, description, choices)`` for every node parameter, in the YAML's order."""
    from perovss_ros.ros.params import BY_NAME

    out = []
    for name, default in yaml_defaults().items():
        spec = BY_NAME[name]
        out.append((name, _text(default), spec.description, spec.choices))
    return out


def generate_launch_description():
    """The node (started active unless autostart:=false) with every parameter as a launch argument."""
    from launch.actions import DeclareLaunchArgument
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node
    from launch_ros.parameter_descriptions import ParameterValue

    from launch import LaunchDescription

    actions = [
        DeclareLaunchArgument("namespace", default_value="", description="namespace of the node"),
        DeclareLaunchArgument("image", default_value="image", description="camera topic to segment"),
    ]
    parameters = {}
    for name, default, description, choices in launch_arguments():
        kwargs = {"choices": list(choices)} if choices else {}
        actions.append(DeclareLaunchArgument(name, default_value=default, description=description, **kwargs))
        # ParameterValue with the YAML default's type keeps "0" an int and "" a string.
        value_type = type(yaml_defaults()[name])
        parameters[name] = ParameterValue(LaunchConfiguration(name), value_type=value_type)
    actions.append(
        Node(
            package="perovss_ros",
            executable="perovss",
            arguments=["node"],
            name="perovss",
            namespace=LaunchConfiguration("namespace"),
            parameters=[parameters],
            remappings=[
                ("image", LaunchConfiguration("image")),
                ("image/compressed", [LaunchConfiguration("image"), "/compressed"]),
            ],
            output="screen",
        )
    )
    return LaunchDescription(actions)
