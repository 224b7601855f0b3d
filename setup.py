"""Build file for the perovss_ros package (pip and ament_python/colcon)."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "perovss_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    description="Personal-object segmentation node for ROS 2 (PerSAM-style, SAM or classic backend).",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"]),
    package_data={f"{PACKAGE}.ros": ["fastdds_large_images.xml"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml")),
    ],
    zip_safe=False,
    entry_points={"console_scripts": ["perovss = perovss_ros.cli:console_main"]},
)
