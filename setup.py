"""Package discovery: every package under codo_aug/ and codo_train/, and cli/ installed as codo_cli.

pyproject.toml holds everything else; `packages.find` alone cannot map cli/ to codo_cli.
"""

from setuptools import find_namespace_packages, setup

PACKAGES = find_namespace_packages(include=["codo_aug", "codo_aug.*", "codo_train", "codo_train.*"],
                                   exclude=["*.__pycache__"])
setup(packages=[*PACKAGES, "codo_cli"], package_dir={"codo_cli": "cli"})
