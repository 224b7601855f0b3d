"""Core value types → perovss_interfaces messages (and back, for clients and tests)."""

from __future__ import annotations

import math

from builtin_interfaces.msg import Time
from perovss_interfaces.msg import Concept, Segmentation
from perovss_interfaces.msg import Segment as SegmentMsg
from sensor_msgs.msg import RegionOfInterest
from std_msgs.msg import Header

from perovss_ros.core.types import BoxXYXY, ConceptInfo, FrameResult, Segment
from perovss_ros.ros.image_conversion import mask_to_image


def box_to_roi(box: BoxXYXY, width: int, height: int) -> RegionOfInterest:
    """XYXY pixel box → RegionOfInterest clipped to the ``width``×``height`` image (whole pixels)."""
    x0 = min(max(math.floor(box[0]), 0), width)
    y0 = min(max(math.floor(box[1]), 0), height)
    x1 = min(max(math.ceil(box[2]), x0), width)
    y1 = min(max(math.ceil(box[3]), y0), height)
    return RegionOfInterest(x_offset=x0, y_offset=y0, width=x1 - x0, height=y1 - y0, do_rectify=False)


def roi_to_box(roi: RegionOfInterest) -> BoxXYXY:
    """RegionOfInterest → XYXY pixel box (x1/y1 one past the last column/row)."""
    x0, y0 = float(roi.x_offset), float(roi.y_offset)
    return (x0, y0, x0 + float(roi.width), y0 + float(roi.height))


def segment_to_msg(seg: Segment, width: int, height: int) -> SegmentMsg:
    """One core Segment → perovss_interfaces/Segment."""
    return SegmentMsg(
        label=seg.label,
        category=seg.category,
        personal=bool(seg.personal),
        instance_id=int(seg.instance_id),
        score=float(seg.score),
        roi=box_to_roi(seg.box_xyxy, width, height),
    )


def frame_result_to_msg(result: FrameResult, header: Header) -> Segmentation:
    """FrameResult → Segmentation: the 16UC1 instance image and the segments, under the input's header."""
    mask = result.instance_mask
    h, w = int(mask.shape[0]), int(mask.shape[1])
    return Segmentation(
        header=header,
        instance_mask=mask_to_image(mask, header),
        segments=[segment_to_msg(s, w, h) for s in result.segments],
    )


def seconds_to_time(t: float) -> Time:
    """Seconds since the epoch → builtin_interfaces/Time."""
    sec = math.floor(t)
    return Time(sec=sec, nanosec=min(round((t - sec) * 1e9), 999_999_999))


def concept_to_msg(info: ConceptInfo) -> Concept:
    """ConceptInfo → perovss_interfaces/Concept."""
    return Concept(
        name=info.name,
        num_shots=int(info.num_shots),
        fine_tuned=bool(info.fine_tuned),
        model=info.model,
        created=seconds_to_time(float(info.created)),
        category=info.category,
    )
