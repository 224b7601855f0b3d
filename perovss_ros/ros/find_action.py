"""The ~/find action: search incoming frames until the named concept is present or time runs out.

The goal's name is a concept name ("my_mug": that personal segment) or a category word
("mug": any segment, personal or generic, whose category or label is it); a concept name wins
where both would fit.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from perovss_interfaces.action import FindObject
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.action.server import ServerGoalHandle
from rclpy.callback_groups import CallbackGroup
from rclpy.node import Node

from perovss_ros.ros.frame_hub import FrameHub
from perovss_ros.ros.messages import segment_to_msg

# How often a waiting search re-checks cancel and the deadline when no frame arrives.
_POLL_S = 0.1


class FindServer:
    """Action server for ``FindObject``; ``known_names()`` lists the taught concepts, ``known_categories()``
    the words a category search accepts (the vocabulary and the concepts' categories).

    The node creates it at its first activation and keeps it until shutdown; goals are
    rejected while ``active()`` is False. Destroying it on every deactivation raced with the
    executor's wait set (rclpy: "action server pointer is invalid", the executor died).
    """

    def __init__(
        self,
        node: Node,
        hub: FrameHub,
        known_names: Callable[[], set[str]],
        callback_group: CallbackGroup,
        active: Callable[[], bool],
        name: str = "~/find",
        known_categories: Callable[[], set[str]] = set,
    ):
        self._node = node
        self._hub = hub
        self._known = known_names
        self._categories = known_categories
        self._active = active
        self._server = ActionServer(
            node,
            FindObject,
            name,
            execute_callback=self._execute,
            goal_callback=self._on_goal,
            cancel_callback=lambda _goal: CancelResponse.ACCEPT,
            callback_group=callback_group,
        )

    def destroy(self) -> None:
        """Remove the action server from the node (at node shutdown)."""
        self._server.destroy()

    def _on_goal(self, goal: FindObject.Goal) -> GoalResponse:
        log = self._node.get_logger()
        if not self._active():
            if goal.name:
                log.warning(f"find: rejected '{goal.name}': the node is not active")
            return GoalResponse.REJECT
        if not self._searchable(goal.name):
            if goal.name:  # an empty name is a client's connectivity probe: rejected quietly
                log.warning(f"find: rejected '{goal.name}': no such concept or category; teach it first "
                            "(~/list_concepts) or add the word to the vocabulary (~/set_vocabulary)")
            return GoalResponse.REJECT
        if not math.isfinite(goal.timeout_s) or goal.timeout_s <= 0:
            log.warning(f"find: rejected timeout_s {goal.timeout_s}; give a positive number of seconds")
            return GoalResponse.REJECT
        return GoalResponse.ACCEPT

    def _execute(self, goal_handle: ServerGoalHandle) -> FindObject.Result:
        name = goal_handle.request.name
        deadline = time.monotonic() + float(goal_handle.request.timeout_s)
        seq = self._hub.seq
        searched = 0
        result = FindObject.Result(found=False)
        while True:
            if goal_handle.is_cancel_requested:
                goal_handle.canceled()
                return result
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._hub.closed or not self._searchable(name):
                goal_handle.abort()
                return result
            event = self._hub.wait_after(seq, min(_POLL_S, remaining))
            if event is None:
                continue
            seq = event.seq
            searched += 1
            goal_handle.publish_feedback(FindObject.Feedback(frames_searched=searched))
            concept = name in self._known()
            for seg in event.result.segments:
                if (seg.personal and seg.label == name) if concept else name in (seg.category, seg.label):
                    h, w = event.result.instance_mask.shape[:2]
                    goal_handle.succeed()
                    segment = segment_to_msg(seg, w, h)
                    return FindObject.Result(found=True, segment=segment, header=event.header)

    def _searchable(self, name: str) -> bool:
        return bool(name) and (name in self._known() or name in self._categories())
