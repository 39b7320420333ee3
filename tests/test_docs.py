"""The README's and docs' Python examples run as written.

A block whose code contains ``# doc-test: needs camvid`` is skipped when CamVid is absent, and
``# doc-test: needs cuda`` without a GPU. Each block runs as its own module in a fresh directory.
"""

import os
import re
import sys
import types
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
CAMVID = Path(os.environ.get("GASGNN_CAMVID", REPO.parent / "shared" / "data" / "CamVid"))


def blocks() -> list:
    out = []
    for doc in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        text = doc.read_text()
        for m in re.finditer(r"```python\n(.*?)```", text, re.S):
            line = text[: m.start()].count("\n") + 1
            out.append(pytest.param(m.group(1), id=f"{doc.relative_to(REPO)}:{line}"))
    return out


def test_docs_have_examples():
    assert len(blocks()) >= 15


@pytest.mark.parametrize("code", blocks())
def test_doc_example_runs(code, tmp_path, monkeypatch, clean_registries):
    if "doc-test: needs camvid" in code:
        if not (CAMVID / "train.txt").is_file():
            pytest.skip("needs CamVid")
        monkeypatch.setenv("GASGNN_CAMVID", str(CAMVID))
    if "doc-test: needs cuda" in code and not torch.cuda.is_available():
        pytest.skip("needs a GPU")
    monkeypatch.chdir(tmp_path)
    # a real module, so classes defined in the example have an importable __module__ (PyG inspects it)
    mod = types.ModuleType("gasgnn_doc_example")
    monkeypatch.setitem(sys.modules, mod.__name__, mod)
    exec(compile(code, "<doc example>", "exec"), mod.__dict__)
