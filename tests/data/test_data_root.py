"""User-facing defaults name no development path (issue 19, finding 9)."""

import pytest

from gasgnn.data import default_camvid_root


def test_camvid_root_comes_from_the_flag_or_the_variable(monkeypatch, tmp_path):
    monkeypatch.delenv("GASGNN_CAMVID", raising=False)
    with pytest.raises(ValueError, match="--root.*GASGNN_CAMVID"):
        default_camvid_root()
    monkeypatch.setenv("GASGNN_CAMVID", str(tmp_path))
    assert default_camvid_root() == tmp_path
