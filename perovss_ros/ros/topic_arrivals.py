"""Listen to a camera topic for a few seconds and estimate its frames lost before arrival.

``perovss doctor --topic T`` uses it: the same subscription QoS and the same estimate
(:mod:`perovss_ros.ros.frame_loss`) as the node, without a pipeline.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sensor_msgs.msg import CompressedImage, Image

from perovss_ros.ros.frame_loss import ArrivalEstimate, ArrivalMonitor, header_stamp_ns
from perovss_ros.ros.qos import sensor_qos

#: Seconds spent looking for the topic's publishers before subscribing anyway.
DISCOVERY_S = 3.0
TYPES = {"sensor_msgs/msg/Image": Image, "sensor_msgs/msg/CompressedImage": CompressedImage}


@dataclass(frozen=True)
class TopicArrivals:
    """What ``listen`` saw: the estimate, the message type name and the publisher count."""

    estimate: ArrivalEstimate
    type_name: str
    publishers: int


def listen(topic: str, seconds: float, reliability: str = "best_effort") -> TopicArrivals:
    """Subscribe to ``topic`` (Image or CompressedImage, as advertised) for ``seconds``.

    The process exits without rclpy teardown afterwards (see perovss_ros.ros.client).
    """
    from perovss_ros.ros.client import PerovssClient

    client = PerovssClient(name="perovss_doctor", background=True, teardown=False)
    try:
        node = client.node
        end = time.monotonic() + DISCOVERY_S
        advertised: list[str] = []
        while not advertised and time.monotonic() < end:
            advertised = [t for name, types in node.get_topic_names_and_types() if name == topic for t in types]
            if not advertised:
                time.sleep(0.1)
        type_name = next((t for t in advertised if t in TYPES), "sensor_msgs/msg/Image")
        monitor = ArrivalMonitor(window_s=max(seconds, 1.0))

        def on_frame(msg: Image | CompressedImage) -> None:
            monitor.add(header_stamp_ns(msg.header.stamp), time.monotonic_ns())

        node.create_subscription(TYPES[type_name], topic, on_frame, sensor_qos(reliability))
        time.sleep(seconds)
        return TopicArrivals(monitor.estimate(), type_name, node.count_publishers(topic))
    finally:
        client.close()
