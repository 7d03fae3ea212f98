"""The command line: every data command runs, exit codes follow the contract, bad input is clear."""

import json
import shutil
import subprocess
import sys

import pytest

from edgevision.cli import _build_parser, main
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


def test_train_help_gives_every_flag_its_config_comment_and_default(capsys):
    from dataclasses import fields

    from edgevision.config import TrainConfig, field_comments

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    comments = field_comments(TrainConfig)
    assert set(comments) == {f.name for f in fields(TrainConfig)}  # every field has its comment
    # A one-line value, a value wrapped over lines, booleans on and off, an empty default.
    assert "--close-mosaic CLOSE_MOSAIC turn mosaic off for the last N epochs (default: 10)" in text
    assert (
        "--cache CACHE auto | ram | none: decoded, resized training images in RAM "
        "(auto: when they fit) (default: auto)" in text
    )
    assert "--ema, --no-ema keep an exponential moving average" in text
    assert "val and export (default: True)" in text
    assert "untimed (README: Precision) (default: False)" in text
    assert "or edgevision data YAML --model" in text  # --data's "" default is not shown


def test_help_shows_each_commands_own_default_and_keeps_percent_signs(capsys):
    from dataclasses import dataclass

    from edgevision.cli import _add_config_flags, _Parser

    texts = {}
    for command in ("val", "predict"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        texts[command] = " ".join(capsys.readouterr().out.split())
    assert "--conf CONF detection score threshold (default: 0.001)" in texts["val"]
    assert "--conf CONF detection score threshold (default: 0.25)" in texts["predict"]
    assert (
        "--project PROJECT parent folder of run folders (default: runs/predict)" in texts["predict"]
    )
    assert "--exist-ok reuse project/name instead of creating name2, name3, ... --" in texts["val"]

    @dataclass
    class Example:
        share: float = 0.1  # 10% of the images

    parser = _Parser(prog="example")
    _add_config_flags(parser, Example)
    assert "--share SHARE 10% of the images (default: 0.1)" in " ".join(
        parser.format_help().split()
    )


def test_field_comments_skip_comment_lines_and_read_wrapped_values():
    from dataclasses import dataclass

    from edgevision.config import field_comments

    @dataclass
    class Example:
        # a comment line of its own belongs to no field
        plain: int = 1  # the first
        wrapped: str = "x"  # the second, inside parentheses
        silent: float = 0.5
        share: float = 0.1  # 10% of it: kept as written

    assert field_comments(Example) == {
        "plain": "the first",
        "wrapped": "the second, inside parentheses",
        "share": "10% of it: kept as written",
    }


def _subcommands(parser):
    """(name, parser) of every command and ``data`` sub-command."""
    found = parser._subparsers._group_actions[0].choices  # noqa: SLF001 (no public API)
    for name, sub in found.items():
        if sub._subparsers is None:  # noqa: SLF001
            yield name, sub
        else:
            yield from ((f"{name} {n}", s) for n, s in _subcommands(sub))


def test_every_argument_of_every_command_has_help():
    """``edgevision COMMAND --help`` explains each argument, not only names it."""
    commands = dict(_subcommands(_build_parser()))
    assert {"train", "val", "predict", "export", "data check", "data synth"} <= set(commands)
    bare = [
        f"{name} {action.option_strings[0] if action.option_strings else action.dest}"
        for name, sub in commands.items()
        for action in sub._actions  # noqa: SLF001
        if not action.help
    ]
    assert bare == []
