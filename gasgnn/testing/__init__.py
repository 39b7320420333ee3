"""Fixture writers used by the tests: small dataset trees in each supported layout."""

from gasgnn.testing.fixtures import (
    make_camvid_tree,
    make_cityscapes_tree,
    make_folder_tree,
)

__all__ = [
    "make_camvid_tree",
    "make_cityscapes_tree",
    "make_folder_tree",
]
