"""Fixture writers used by the tests: small dataset trees in each supported layout.

Each dataset registers its writer with itself (``register_dataset(name, fixture=writer)``); these are
the built-in datasets' writers under their familiar names, and :func:`gasgnn.data.dataset_fixture`
gives any registered dataset's.
"""

from gasgnn.data.camvid import make_camvid_tree
from gasgnn.data.cityscapes import make_cityscapes_tree
from gasgnn.data.folder import make_folder_tree

__all__ = [
    "make_camvid_tree",
    "make_cityscapes_tree",
    "make_folder_tree",
]
