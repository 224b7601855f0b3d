"""Categories cross the message boundary: Segment, Concept and the teach reply carry them."""

from __future__ import annotations

from perovss_ros.core.types import ConceptInfo, Segment, TeachResult
from perovss_ros.ros.messages import concept_to_msg, segment_to_msg
from perovss_ros.ros.params import split_words
from perovss_ros.ros.teach import success_response


def _info(category: str) -> ConceptInfo:
    return ConceptInfo(name="my_mug", num_shots=3, fine_tuned=False, model="classic-v1", created=1.5,
                       presence_threshold=0.4, instance_id=1, category=category)


def test_segment_and_concept_messages_carry_the_category() -> None:
    generic = segment_to_msg(Segment("mug", 32768, 0.8, (1.0, 2.0, 5.0, 6.0), personal=False, category="mug"),
                             10, 10)
    assert (generic.label, generic.category, generic.personal, generic.instance_id) == ("mug", "mug", False, 32768)
    assert concept_to_msg(_info("mug")).category == "mug"
    assert concept_to_msg(_info("")).category == ""


def test_teach_reply_says_where_the_category_came_from() -> None:
    inferred = success_response("my_mug", TeachResult(_info("mug"), 0.9, "mug", "inferred"), "taught")
    assert inferred.concept.category == "mug" and "category 'mug' (inferred from the shots)" in inferred.message
    none = success_response("my_mug", TeachResult(_info(""), 0.9), "taught")
    assert "no category" in none.message and none.concept.category == ""


def test_vocabulary_parameter_is_comma_separated_words() -> None:
    assert split_words(" mug, ball ,,book ") == ["mug", "ball", "book"]
    assert split_words("") == []


def test_teach_command_sends_the_category(tmp_path) -> None:
    import argparse

    import cv2
    import numpy as np

    from perovss_ros.commands.teach import add_arguments, build_request

    image, mask = tmp_path / "shot.png", tmp_path / "mask.png"
    cv2.imwrite(str(image), np.zeros((8, 8, 3), np.uint8))
    cv2.imwrite(str(mask), np.full((8, 8), 255, np.uint8))
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["my_mug", "--image", str(image), "--mask", str(mask), "--category", "mug"])
    assert build_request(args).category == "mug"
    args = parser.parse_args(["my_mug", "--image", str(image), "--mask", str(mask)])
    assert build_request(args).category == ""
