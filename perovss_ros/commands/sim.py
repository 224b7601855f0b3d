"""``perovss sim``: write a synthetic scene as a ROS 2 bag, or inspect any bag with an image topic."""

from __future__ import annotations

import argparse
import sys

HELP = ("write a seeded synthetic scene (frames, personal, all-object and category ground truth, teaching frames) "
        "as a ROS 2 bag")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Scene and bag options of ``perovss sim``."""
    from perovss_ros.sim import topics as d

    parser.add_argument("--out", default="perovss_scene", help="bag directory to create (default: perovss_scene)")
    parser.add_argument("--frames", type=int, default=60, help="camera frames (default: 60)")
    parser.add_argument("--width", type=int, default=320, help="image width in pixels (default: 320)")
    parser.add_argument("--height", type=int, default=240, help="image height in pixels (default: 240)")
    parser.add_argument("--fps", type=float, default=10.0, help="frame rate of the header stamps (default: 10)")
    parser.add_argument("--seed", type=int, default=0, help="scene seed; the same seed gives the same bag")
    parser.add_argument("--objects", type=int, default=1, help="personal objects, 1..5 (default: 1, my_mug)")
    parser.add_argument("--difficulty", choices=("easy", "hard"), default="easy",
                        help="easy: look-alikes differ in two attributes, small rotation; hard: look-alikes differ "
                             "in exactly one (colour, pattern or shape), full rotation, a look-alike touches each "
                             "personal object at times (default: easy)")
    parser.add_argument("--lookalikes", type=int, default=None,
                        help="look-alike distractors (default: 2 for easy, 3 per personal object for hard; "
                             "hard allows up to 4 per object)")
    from perovss_ros.sim import camera

    camera.add_arguments(parser, "the written scene")
    parser.add_argument("--storage", choices=d.STORAGES, default="mcap", help="bag storage (default: mcap)")
    parser.add_argument("--image-topic", default=d.IMAGE_TOPIC, help=f"camera topic (default: {d.IMAGE_TOPIC})")
    parser.add_argument("--mask-topic", default=d.MASK_TOPIC,
                        help=f"ground-truth 16UC1 topic, '' for none (default: {d.MASK_TOPIC})")
    parser.add_argument("--object-mask-topic", default=d.OBJECT_MASK_TOPIC,
                        help="all-object ground truth (every personal object and look-alike with its own id) "
                             f"16UC1 topic, '' for none (default: {d.OBJECT_MASK_TOPIC})")
    parser.add_argument("--class-mask-topic", default=d.CLASS_MASK_TOPIC,
                        help="category ground truth (pixel = class id: mug, ball, box, bottle, book, clutter; "
                             "0 = no class; the id table is in the bag's metadata) 16UC1 topic, '' for none "
                             f"(default: {d.CLASS_MASK_TOPIC})")
    parser.add_argument("--teach-image-topic", default=d.TEACH_IMAGE_TOPIC,
                        help=f"teaching frames, '' for none (default: {d.TEACH_IMAGE_TOPIC})")
    parser.add_argument("--teach-mask-topic", default=d.TEACH_MASK_TOPIC,
                        help=f"teaching masks, mono8 (default: {d.TEACH_MASK_TOPIC})")
    parser.add_argument("--info", metavar="BAG", default=None,
                        help="instead of writing, describe BAG: topics, image size, frames with masks")
    parser.add_argument("--gazebo-labels-topic", default=None, metavar="T",
                        help="with --info: list the (label, instance) pairs of a Gazebo labels_map topic, to find "
                             "the one to give `perovss eval --personal NAME=LABEL:INSTANCE`")
    parser.add_argument("--gazebo-mode", choices=("panoptic", "semantic"), default="panoptic",
                        help="with --gazebo-labels-topic: the segmentation type (default: panoptic)")
    parser.add_argument("--gazebo-layout", choices=("bridged", "opencv"), default="bridged",
                        help="with --gazebo-labels-topic: the labels map's byte layout (default: bridged)")


def _info(args: argparse.Namespace) -> int:
    from perovss_ros.sim.bags import bag_scene_info, bag_topics, find_image_topic, read_frames

    topics = bag_topics(args.info)
    print(f"bag {args.info}")
    for name, (kind, count) in sorted(topics.items()):
        print(f"  {name}  {kind}  {count} message(s)")
    image_topic = find_image_topic(args.info) if args.image_topic not in topics else args.image_topic
    mask_topic = args.mask_topic if args.mask_topic in topics else None
    frames = with_mask = 0
    size = None
    for frame in read_frames(args.info, image_topic, mask_topic):
        frames += 1
        with_mask += frame.mask is not None
        size = frame.rgb.shape[1::-1]
    print(f"image topic {image_topic}: {frames} frame(s) of {size[0]}×{size[1]}" if size else
          f"image topic {image_topic}: no frames")
    print(f"mask topic {mask_topic or '(none)'}: {with_mask} frame(s) with a mask")
    scene = bag_scene_info(args.info)
    if scene:
        print(f"perovss scene: seed {scene.get('seed')}, {scene.get('difficulty', 'easy')}, "
              f"objects {scene.get('objects')}, look-alikes {len(scene.get('lookalikes', []))}")
        if scene.get("classes"):
            table = ", ".join(f"{cid} {word}" for cid, word in scene["classes"].items())
            print(f"  classes (id word): {table}")
    if args.gazebo_labels_topic:
        from perovss_ros.eval.gazebo import decode_labels_map, pair_counts
        from perovss_ros.sim.bags import read_messages

        maps = (decode_labels_map(msg, args.gazebo_mode, args.gazebo_layout)
                for _, msg in read_messages(args.info, args.gazebo_labels_topic))
        counts = pair_counts(maps)
        print(f"labels topic {args.gazebo_labels_topic}: {len(counts)} (label, instance) pair(s)")
        for (label, instance), (seen, pixels) in sorted(counts.items()):
            print(f"  label {label} instance {instance}: in {seen} frame(s), {pixels / seen:.0f} px a frame")
    return 0


def run(args: argparse.Namespace) -> int:
    """Write the bag (or describe one with --info); 0 on success, 1 on a bad argument or bag."""
    from perovss_ros.core.errors import InvalidInputError

    try:
        if args.info:
            return _info(args)
        if args.gazebo_labels_topic:
            raise InvalidInputError("--gazebo-labels-topic goes with --info BAG")
        from perovss_ros.sim.bags import write_scene_bag
        from perovss_ros.sim.camera import OPTIONS, degrade_scene, from_arguments
        from perovss_ros.sim.scenes import make_scene

        try:
            seen = from_arguments(args)
        except ValueError as exc:
            raise InvalidInputError(f"{OPTIONS}: {exc}") from exc
        scene = make_scene(seed=args.seed, num_frames=args.frames, size=(args.width, args.height),
                           num_objects=args.objects, num_lookalikes=args.lookalikes, fps=args.fps,
                           difficulty=args.difficulty)
        scene = degrade_scene(scene, seen, args.seed)
        counts = write_scene_bag(scene, args.out, storage=args.storage, image_topic=args.image_topic,
                                 mask_topic=args.mask_topic, teach_image_topic=args.teach_image_topic,
                                 teach_mask_topic=args.teach_mask_topic, object_mask_topic=args.object_mask_topic,
                                 class_mask_topic=args.class_mask_topic)
    except InvalidInputError as exc:
        print(f"perovss sim: {exc}", file=sys.stderr)
        return 1
    names = ", ".join(f"{o.name} (id {o.instance_id})" for o in scene.objects)
    print(f"wrote {args.out} ({args.storage}): {scene.num_frames} frames {args.width}×{args.height} "
          f"at {args.fps:g} fps, seed {args.seed}, {scene.difficulty}"
          + (f", camera {seen.describe()}" if seen.active else ""))
    kinds = ", ".join(f"{o.name} ({o.kind} of {o.mimics})" for o in scene.lookalikes)
    print(f"  objects: {names}; look-alikes: {len(scene.lookalikes)}" + (f": {kinds}" if kinds else ""))
    for topic, count in counts.items():
        print(f"  {topic}: {count} message(s)")
    return 0
