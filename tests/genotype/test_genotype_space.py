"""A genotype's cells must agree with its space (issue 19, finding 7: a mismatch allocated terabytes)."""

import pytest
import torch

from gasgnn.genotype import Genotype, random_genotype


def test_cell_channels_are_checked_against_the_space(tiny_space):
    d = random_genotype(tiny_space, torch.Generator().manual_seed(0)).to_dict()
    d["cells"][0]["channels"] = 4096
    with pytest.raises(ValueError, match=r"cells\[0\]\.channels: 4096.*space"):
        Genotype.from_dict(d)
