"""``perovss teach NAME``: teach a running node a concept from image files or from its live camera.

    perovss teach my_mug --image a.png b.png --mask a_mask.png b_mask.png
    perovss teach my_mug --image a.png --box 40 30 120 110
    perovss teach my_mug --capture 3 --box 40 30 120 110      # the next 3 camera frames

The same request as ``ros2 service call /perovss/teach perovss_interfaces/srv/Teach ...``.
"""

from __future__ import annotations

import argparse
import sys

#: See perovss_ros.ros.client: this short-lived process exits without rclpy teardown.
EXIT_WITHOUT_TEARDOWN = True
HELP = "teach a concept from images with masks or a box, or from N live frames (calls ~/teach)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """NAME, the images and their prompts, --fine-tune, --replace, --node."""
    from perovss_ros.commands.node_target import add_target_argument

    parser.add_argument("name", help="concept name (letters, digits, _ . -; at most 64 characters)")
    parser.add_argument("--image", nargs="+", default=[], metavar="PNG", help="reference images")
    parser.add_argument("--mask", nargs="+", default=[], metavar="PNG",
                        help="one mask per image (nonzero = object)")
    parser.add_argument("--box", nargs=4, type=int, metavar=("X0", "Y0", "X1", "Y1"),
                        help="box around the object in the first image/frame (propagated to the others)")
    parser.add_argument("--capture", type=int, default=0, metavar="N",
                        help="capture N frames from the node's camera topic instead of --image (needs --box)")
    parser.add_argument("--fine-tune", action="store_true", help="fit PerSAM-F scale weights")
    parser.add_argument("--replace", action="store_true",
                        help="overwrite the concept instead of adding shots")
    parser.add_argument("--category", default="", metavar="WORD",
                        help="what it is (mug); default: keep the concept's, or inferred when the node labels")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the answer")
    add_target_argument(parser)


def build_request(args: argparse.Namespace):
    """The Teach request for ``args`` (reads the image files); ValueError names a bad file."""
    import cv2
    from perovss_interfaces.srv import Teach

    from perovss_ros.ros.image_conversion import mask_to_image, rgb_to_image
    from perovss_ros.ros.messages import box_to_roi

    request = Teach.Request(name=args.name, num_frames=max(args.capture, 0), fine_tune=args.fine_tune,
                            replace=args.replace, category=args.category)
    for path in args.image:
        bgr = cv2.imread(path, cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"cannot read image {path}")
        request.images.append(rgb_to_image(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))
    for path in args.mask:
        gray = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
        if gray is None:
            raise ValueError(f"cannot read mask {path}")
        request.masks.append(mask_to_image(gray > 0))
    if args.box is not None:
        x0, y0, x1, y1 = args.box
        request.boxes.append(box_to_roi((x0, y0, x1, y1), max(x1, 0), max(y1, 0)))
    return request


def run(args: argparse.Namespace) -> int:
    """0 on success (prints the node's message and self IoU), 1 otherwise."""
    from perovss_ros.ros.client import NodeUnavailableError, PerovssClient

    if not args.image and not args.capture:
        print("perovss teach: give --image files (with --mask or --box) or --capture N --box",
              file=sys.stderr)
        return 2
    if args.image and args.capture:
        print("perovss teach: --image and --capture exclude each other", file=sys.stderr)
        return 2
    try:
        request = build_request(args)
        with PerovssClient(args.node, teardown=False) as client:
            response = client.teach(request, timeout=args.timeout)
    except (ValueError, NodeUnavailableError) as exc:
        print(f"perovss teach: {exc}", file=sys.stderr)
        return 1
    if not response.success:
        print(f"perovss teach: {response.message}", file=sys.stderr)
        return 1
    print(f"{response.message} (self IoU {response.self_iou:.3f})")
    return 0
