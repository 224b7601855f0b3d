"""Every interface type of perovss_interfaces constructs with the fields DESIGN.md specifies."""

from __future__ import annotations

import pytest

# The contract of docs/ARCHITECTURE.md ("Messages"), written out field by field.
SPEC: dict[str, dict[str, str]] = {
    "msg/Segment": {
        "label": "string",
        "category": "string",
        "personal": "boolean",
        "instance_id": "uint16",
        "score": "float",
        "roi": "sensor_msgs/RegionOfInterest",
    },
    "msg/Segmentation": {
        "header": "std_msgs/Header",
        "instance_mask": "sensor_msgs/Image",
        "segments": "sequence<perovss_interfaces/Segment>",
    },
    "msg/Concept": {
        "name": "string",
        "num_shots": "uint32",
        "fine_tuned": "boolean",
        "model": "string",
        "created": "builtin_interfaces/Time",
        "category": "string",
    },
    "srv/Teach.Request": {
        "name": "string",
        "images": "sequence<sensor_msgs/Image>",
        "num_frames": "uint32",
        "masks": "sequence<sensor_msgs/Image>",
        "boxes": "sequence<sensor_msgs/RegionOfInterest>",
        "fine_tune": "boolean",
        "replace": "boolean",
        "category": "string",
    },
    "srv/Teach.Response": {
        "success": "boolean",
        "message": "string",
        "concept": "perovss_interfaces/Concept",
        "self_iou": "float",
    },
    "srv/Forget.Request": {"name": "string"},
    "srv/Forget.Response": {"success": "boolean", "message": "string"},
    "srv/ListConcepts.Request": {},
    "srv/ListConcepts.Response": {"concepts": "sequence<perovss_interfaces/Concept>"},
    "srv/SetVocabulary.Request": {"labels": "sequence<string>"},
    "srv/SetVocabulary.Response": {"success": "boolean", "message": "string"},
    "action/FindObject.Goal": {"name": "string", "timeout_s": "float"},
    "action/FindObject.Feedback": {"frames_searched": "uint32"},
    "action/FindObject.Result": {
        "found": "boolean",
        "segment": "perovss_interfaces/Segment",
        "header": "std_msgs/Header",
    },
}


def _resolve(key: str):
    import importlib

    kind_name, _, part = key.partition(".")
    kind, name = kind_name.split("/")
    module = importlib.import_module(f"perovss_interfaces.{kind}")
    cls = getattr(module, name)
    return getattr(cls, part) if part else cls


@pytest.mark.parametrize("key", sorted(SPEC))
def test_interface_fields_match_design(key: str) -> None:
    cls = _resolve(key)
    instance = cls()
    assert instance.get_fields_and_field_types() == SPEC[key]


def test_segmentation_round_trips_through_serialization() -> None:
    from perovss_interfaces.msg import Segment, Segmentation
    from rclpy.serialization import deserialize_message, serialize_message
    from sensor_msgs.msg import RegionOfInterest

    msg = Segmentation()
    msg.header.frame_id = "camera"
    msg.instance_mask.encoding = "16UC1"
    msg.instance_mask.height, msg.instance_mask.width = 2, 3
    msg.instance_mask.step = 6
    msg.instance_mask.data = bytes(range(12))
    msg.segments = [
        Segment(label="my_mug", category="mug", personal=True, instance_id=7, score=0.5,
                roi=RegionOfInterest(x_offset=1, y_offset=0, width=2, height=1))
    ]
    back = deserialize_message(serialize_message(msg), Segmentation)
    assert back.header.frame_id == "camera"
    assert bytes(back.instance_mask.data) == bytes(range(12))
    assert back.segments[0].label == "my_mug"
    assert back.segments[0].category == "mug"
    assert back.segments[0].instance_id == 7
    assert back.segments[0].roi.width == 2

