import os
from pathlib import Path

import pytest
import torch

# Without a GPU, the Triton kernels are tested in Triton's interpreter. Triton reads this when it is
# first imported, so it must be set before any test module (or torch internals) import it.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

REPO = Path(__file__).resolve().parents[1]
CAMVID = Path(os.environ.get("GASGNN_CAMVID", REPO.parent / "shared" / "data" / "CamVid"))
# The package names no development path: tests point CamVid at this project's copy through the variable.
os.environ.setdefault("GASGNN_CAMVID", str(CAMVID))
# Commands resolve --threads from this; tests stay on one thread (and skip the busy-core probe).
os.environ.setdefault("GASGNN_THREADS", "1")
os.environ.setdefault("GASGNN_OMP_WAIT", "default")


@pytest.fixture(autouse=True)
def _seed_and_threads():
    # Test tensors are tiny: one thread avoids OpenMP hand-off costs (and thrashing on a busy machine).
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tiny_space():
    """A 3-cell space small enough for step-level tests on the CPU."""
    from gasgnn import SearchSpace

    return SearchSpace(num_cells=3, num_nodes=2, reduction_cells=(1,), channels=4, input_size=(32, 32))


@pytest.fixture
def camvid_root():
    if not (CAMVID / "train.txt").is_file():
        pytest.skip(f"CamVid not found at {CAMVID}")
    return CAMVID


@pytest.fixture
def clean_registries(tmp_path):
    """Undoes what a test registers (ops, datasets, guides, convs, heads, builders, space presets, reference
    networks) and forgets the plugin modules it imported from ``tmp_path``, so a later test can load them again."""
    import sys

    from gasgnn import BUILDERS, GUIDES, HEADS, OPS
    from gasgnn.data import DATASETS
    from gasgnn.genotype import REFERENCE_NETS
    from gasgnn.ggm import CONVS
    from gasgnn.space import SPACE_PRESETS

    registries = [OPS, HEADS, GUIDES, CONVS, BUILDERS, DATASETS, REFERENCE_NETS, SPACE_PRESETS]
    before = [set(r) for r in registries]
    yield
    for r, names in zip(registries, before):
        for name in set(r) - names:
            r.remove(name)
    for name, mod in list(sys.modules.items()):
        file = getattr(mod, "__file__", None)
        if file and Path(file).resolve().is_relative_to(tmp_path.resolve()):
            del sys.modules[name]
