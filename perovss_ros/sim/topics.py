"""Default topic names and storages of scene bags (a light module: the CLI parser imports it)."""

from __future__ import annotations

IMAGE_TOPIC = "/camera/image_raw"
MASK_TOPIC = "/perovss/ground_truth"
OBJECT_MASK_TOPIC = "/perovss/object_ground_truth"
CLASS_MASK_TOPIC = "/perovss/class_ground_truth"
TEACH_IMAGE_TOPIC = "/perovss/teach/image"
TEACH_MASK_TOPIC = "/perovss/teach/mask"
FRAME_ID = "camera"
STORAGES = ("mcap", "sqlite3")
