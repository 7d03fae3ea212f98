"""The command line: every data command runs, exit codes follow the contract, bad input is clear."""

import json
import shutil
import subprocess
import sys

import pytest

from edgevision.cli import main
from edgevision.data.synth.detect import synthesize_detection


@pytest.fixture(scope="module")
def voc(tmp_path_factory):
    return synthesize_detection(tmp_path_factory.mktemp("cli") / "voc", n_train=10, n_val=4, seed=3)


def test_check_exit_codes_clean_dirty_and_usage(voc, tmp_path, capsys):
    assert main(["data", "check", str(voc)]) == 0
    dirty = tmp_path / "dirty"
    shutil.copytree(voc, dirty)
    xml = next((dirty / "Annotations").glob("*.xml"))
    xml.write_text(xml.read_text().replace("<width>", "<width>0").replace("</width>", ".0</width>"))
    report = tmp_path / "report.json"
    assert main(["data", "check", str(dirty), "--json", str(report)]) == 1
    out = capsys.readouterr().out
    assert xml.name in out and "float_size" in out
    assert json.loads(report.read_text())["check"]
    assert main(["data", "check", str(dirty), "--fix"]) == 2  # --fix needs --out or --in-place
    assert "--fix needs --out" in capsys.readouterr().err
    assert main(["data", "check", str(dirty), "--fix", "--out", str(tmp_path / "fixed")]) == 0
    assert "<width>" in (tmp_path / "fixed" / "Annotations" / xml.name).read_text()


def test_stats_anchors_split_convert(voc, tmp_path, capsys):
    runs = str(tmp_path / "runs")
    assert main(["data", "stats", str(voc), "--project", runs]) == 0
    assert (tmp_path / "runs" / "stats" / "stats.json").is_file()
    assert (
        main(
            [
                "data",
                "anchors",
                str(voc),
                "-k",
                "3",
                "--imgsz",
                "160",
                "--generations",
                "0",
                "--project",
                runs,
            ]
        )
        == 0
    )
    assert "best possible recall" in capsys.readouterr().out
    assert main(["data", "split", str(voc)]) == 1  # existing split files are not overwritten
    assert "--force" in capsys.readouterr().err
    assert main(["data", "convert", str(voc), "--to", "yolo", "--out", str(tmp_path / "yolo")]) == 0
    assert (tmp_path / "yolo" / "data.yaml").is_file()


def test_unknown_command_and_option_suggest_close_matches(capsys):
    assert main(["trian"]) == 2
    assert "did you mean train" in capsys.readouterr().err
    from edgevision.api import train

    with pytest.raises(Exception, match="did you mean epochs"):
        train(epochz=3)


def test_unknown_model_lists_close_matches(voc, capsys):
    assert main(["train", "--data", str(voc), "--model", "nano-x", "--epochs", "1"]) == 2
    assert "nano-s" in capsys.readouterr().err


def test_console_script_and_module_entry_points():
    result = subprocess.run(
        [sys.executable, "-m", "edgevision", "--version"], capture_output=True, text=True
    )
    assert result.returncode == 0 and "0.1.0" in result.stdout
