"""QoS profiles and incompatible-QoS warnings that say which setting to change.

A reliable subscription never hears a best-effort camera, and DDS reports that only
as an event; without these callbacks the node just sits silent (the most frequent
complaint about similar nodes).
"""

from __future__ import annotations

from collections.abc import Callable

from rclpy.event_handler import (
    PublisherEventCallbacks,
    QoSOfferedIncompatibleQoSInfo,
    QoSRequestedIncompatibleQoSInfo,
    SubscriptionEventCallbacks,
)
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSPolicyKind,
    QoSProfile,
    ReliabilityPolicy,
)

RELIABILITY = {"best_effort": ReliabilityPolicy.BEST_EFFORT, "reliable": ReliabilityPolicy.RELIABLE}


def sensor_qos(reliability: str = "best_effort") -> QoSProfile:
    """Keep-last depth 1, volatile; ``reliability`` is "best_effort" (sensor data) or "reliable"."""
    if reliability not in RELIABILITY:
        raise ValueError(f"reliability must be one of {', '.join(RELIABILITY)}, got {reliability!r}")
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=1,
        reliability=RELIABILITY[reliability],
        durability=DurabilityPolicy.VOLATILE,
    )


def output_qos(depth: int = 2) -> QoSProfile:
    """Reliable, volatile, keep-last: compatible with both reliable and best-effort subscribers."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=depth,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.VOLATILE,
    )


def _policy_name(kind: QoSPolicyKind | int) -> str:
    try:
        return QoSPolicyKind(kind).name
    except ValueError:
        return str(kind)


def subscription_incompatible_hint(topic: str, reliability: str, policy: QoSPolicyKind | int) -> str:
    """The warning for a publisher on ``topic`` whose offered QoS this subscription cannot match."""
    name = _policy_name(policy)
    if name == "RELIABILITY":
        fix = (
            "the publisher is best_effort but this node requests reliable; "
            "set parameter reliability:=best_effort"
            if reliability == "reliable"
            else "set parameter reliability to match the publisher"
        )
    else:
        fix = f"make the publisher's {name.lower()} policy compatible with keep-last depth 1, volatile"
    return f"incompatible QoS with a publisher on '{topic}' (policy {name}): {fix}"


def publisher_incompatible_hint(topic: str, policy: QoSPolicyKind | int) -> str:
    """The warning for a subscriber to ``topic`` whose requested QoS this publisher does not offer."""
    name = _policy_name(policy)
    if name == "DURABILITY":
        fix = "this node publishes volatile; subscribe with durability volatile"
    elif name == "DEADLINE":
        fix = "this node publishes at the camera's rate with no deadline; remove the subscriber's deadline"
    else:
        fix = f"subscribe with a {name.lower()} policy that a reliable, volatile publisher offers"
    return f"incompatible QoS with a subscriber to '{topic}' (policy {name}): {fix}"


def subscription_events(
    topic: str, reliability: str, warn: Callable[[str], None]
) -> SubscriptionEventCallbacks:
    """Event callbacks for the image subscription: incompatible QoS → one warning naming the fix."""

    def on_incompatible(info: QoSRequestedIncompatibleQoSInfo) -> None:
        warn(subscription_incompatible_hint(topic, reliability, info.last_policy_kind))

    return SubscriptionEventCallbacks(incompatible_qos=on_incompatible)


def publisher_events(topic: str, warn: Callable[[str], None]) -> PublisherEventCallbacks:
    """Event callbacks for an output publisher: incompatible QoS → one warning naming the fix."""

    def on_incompatible(info: QoSOfferedIncompatibleQoSInfo) -> None:
        warn(publisher_incompatible_hint(topic, info.last_policy_kind))

    return PublisherEventCallbacks(incompatible_qos=on_incompatible)
