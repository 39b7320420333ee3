"""--config, --print-config, NaN flags and --threads (issue 19: findings 6 and 8, config files)."""

import json

import pytest

from gasgnn.cli import main
from gasgnn.commands._config import omp_wait_policy
from gasgnn.utils import resolve_threads


def test_print_config_resolves_file_then_flags(tmp_path, capsys):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"latency-weight": 0.5, "epochs": 7, "guide": "fc"}))
    assert main(["search", "--config", str(cfg), "--epochs", "3", "--print-config"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["latency_weight"] == 0.5 and out["guide"] == "fc"  # from the file
    assert out["epochs"] == 3  # the flag overrides the file
    assert "config" not in out and "resume" not in out


def test_unknown_key_names_file_and_key(tmp_path, capsys):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"latency_wieght": 0.5}))
    assert main(["search", "--config", str(cfg), "--print-config"]) == 2
    err = capsys.readouterr().err
    assert str(cfg) in err and "latency_wieght" in err and "Traceback" not in err
    cfg.write_text("{not json")
    assert main(["train", "--genotype", "hand_sep", "--config", str(cfg)]) == 2
    assert "cannot parse" in capsys.readouterr().err


def test_run_config_json_is_a_config_file(tmp_path, capsys):
    """A run's config.json has an 'args' section: --config on it gives that run's options back."""
    run_cfg = tmp_path / "config.json"
    run_cfg.write_text(json.dumps({"space": {}, "search": {}, "args": {"latency_weight": 0.25, "seed": 3,
                                                                       "out": "runs/a", "resume": True}}))
    assert main(["search", "--config", str(run_cfg), "--out", str(tmp_path / "b"), "--print-config"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["latency_weight"] == 0.25 and out["seed"] == 3 and out["out"] == str(tmp_path / "b")


@pytest.mark.parametrize("flag", ["--latency-weight", "--w-lr", "--a-lr"])
@pytest.mark.parametrize("value", ["nan", "inf"])
def test_nonfinite_flags_are_clean_errors(flag, value, capsys):
    assert main(["search", flag, value, "--print-config"]) == 2
    err = capsys.readouterr().err
    assert f"{flag}: must be a finite number" in err and "Traceback" not in err


def test_threads_policy():
    assert resolve_threads("auto", cores=2, busy=1.0) == 1  # one core taken: do not spin on it
    assert resolve_threads("auto", cores=2, busy=0.05) == 2
    assert resolve_threads("auto", cores=4, busy=9.0) == 1
    assert resolve_threads("3", cores=4) == 3 and resolve_threads(None) is None
    with pytest.raises(ValueError, match="--threads"):
        resolve_threads("many")
    assert omp_wait_policy("auto", busy=1.0) == "PASSIVE" and omp_wait_policy("auto", busy=0.0) is None
    assert omp_wait_policy("default") is None and omp_wait_policy("active") == "ACTIVE"


def test_help_prints_each_default_once(capsys):
    with pytest.raises(SystemExit):
        main(["search", "--help"])
    out = capsys.readouterr().out
    assert "(default: None)" not in out and "shared/data" not in out
    assert "(default: 0.01) (default" not in out.replace("\n", " ")
