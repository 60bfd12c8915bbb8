"""Config arguments name shipped configs (found through the package, not the working directory), and a
name that matches nothing is one error listing the shipped names."""
import os
import subprocess
import sys

import pytest
from conftest import ROOT

from dpt_tools import train
from dpt_tools.config_files import shipped_config_root, shipped_names


def cfg_for(argv):
    return train.setup_cfg(train.build_parser().parse_args(argv))


@pytest.mark.parametrize("config_args", [
    ["--trainer", "DPT", "--config-file", "DPT/vit_b16"],
    ["--trainer", "DPT", "--config-file", "vit_b16"],
    ["--trainer", "DPT", "--config-file", "configs/trainers/DPT/vit_b16.yaml"],
])
def test_named_configs_resolve_from_any_directory(config_args, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no configs/ here
    cfg = cfg_for([*config_args, "--dataset-config-file", "eurosat"])
    assert cfg.DATASET.NAME == "EuroSAT" and cfg.MODEL.BACKBONE.NAME == "ViT-B/16"
    assert cfg.TRAINER.NAME == "DPT" and cfg.DATALOADER.TEST.BATCH_SIZE == 50


def test_a_file_wins_over_a_shipped_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.makedirs("DPT")
    (tmp_path / "DPT" / "vit_b16").write_text("OPTIM:\n  MAX_EPOCH: 7\n")
    assert cfg_for(["--trainer", "DPT", "--config-file", "DPT/vit_b16"]).OPTIM.MAX_EPOCH == 7


@pytest.mark.parametrize("flag, value, listed", [
    ("--config-file", "DPT/vit_b99", "DPT/vit_b16, DPT/vit_b32"),
    ("--dataset-config-file", "eurosatt.yaml", "eurosat, fgvc_aircraft"),
])
def test_unknown_config_is_one_error_listing_the_shipped_names(flag, value, listed, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        train.main(["--trainer", "DPT", flag, value, "--output-dir", str(tmp_path / "out")])
    message = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and "Traceback" not in message
    assert message.startswith(f"Error: {flag} {value}: no such file") and listed in message
    assert not (tmp_path / "out").exists()


def test_shipped_configs_cover_the_repository_configs():
    root = shipped_config_root()
    assert (root / "trainers" / "DPT" / "toy.yaml").is_file()
    expected = {"DPT/toy", "DPT/vit_b16", "VLP/vit_b32", "VPT/toy", "CoOp/rn50", "CoCoOp/toy"}
    assert expected <= set(shipped_names("trainers"))
    assert {"eurosat", "imagenet", "toy_fog", "toy_dusk"} <= set(shipped_names("datasets"))


def test_dpt_config_imports_no_torch():
    """`dpt-config` runs inside `$(...)` on command lines: printing a path imports neither torch nor the engine."""
    script = ("import sys; from dpt_tools.config_files import main; main(['DPT/vit_b16', 'eurosat']); "
              "print(sorted(name for name in ('torch', 'dassl_compat') if name in sys.modules))")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]"
