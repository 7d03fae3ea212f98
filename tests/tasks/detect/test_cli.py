"""train / val / predict from the command line on VOC, COCO and YOLO inputs (tiny sets, one epoch)."""

import json

import pytest

from edgevision.cli import main
from edgevision.data.convert import convert_dataset
from edgevision.data.synth.detect import synthesize_detection

TRAIN = [
    "--model",
    "nano-s",
    "--epochs",
    "1",
    "--imgsz",
    "64",
    "--batch",
    "4",
    "--workers",
    "0",
    "--no-plots",
    "--no-verbose",
    "--seed",
    "3",
]
FORMATS = ("voc", "coco", "yolo")


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    root = tmp_path_factory.mktemp("formats")
    voc = synthesize_detection(root / "voc", n_train=8, n_val=4, width_range=(64, 96), seed=5)
    return {
        "voc": voc,
        "coco": convert_dataset(voc, "coco", root / "coco"),
        "yolo": convert_dataset(voc, "yolo", root / "yolo"),
    }


@pytest.fixture(scope="module")
def runs(datasets, tmp_path_factory):
    project = tmp_path_factory.mktemp("runs")
    for fmt in FORMATS:
        assert (
            main(
                ["train", "--data", str(datasets[fmt]), "--project", str(project), "--name", fmt]
                + TRAIN
            )
            == 0
        )
    return project


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
def test_train_writes_a_run_on_every_format(runs, fmt):
    run = runs / fmt
    assert (run / "weights" / "last.pt").is_file() and (run / "weights" / "best.pt").is_file()
    assert (run / "results.csv").read_text().count("\n") == 2  # header + one epoch
    assert (
        "mAP50-95" in (run / "results.csv").read_text().splitlines()[0]
    )  # validated on the val split


@pytest.mark.slow
def test_val_of_one_model_is_the_same_on_every_format(datasets, runs, tmp_path):
    """The same weights on the same images give the same metrics whichever format holds the boxes."""
    weights = str(runs / "voc" / "weights" / "best.pt")
    stats = {}
    for fmt in FORMATS:
        assert (
            main(
                [
                    "val",
                    "--weights",
                    weights,
                    "--data",
                    str(datasets[fmt]),
                    "--project",
                    str(tmp_path),
                    "--name",
                    fmt,
                    "--workers",
                    "0",
                ]
            )
            == 0
        )
        stats[fmt] = json.loads((tmp_path / fmt / "metrics.json").read_text())
        assert (tmp_path / fmt / "predictions.json").is_file()
    assert (
        stats["voc"]["AR100"] > 0
    )  # the one-epoch model finds something: the comparison has teeth
    for fmt in ("coco", "yolo"):
        for key in ("mAP50-95", "mAP50", "AR100"):
            # YOLO stores normalised centres: boxes come back within float rounding of the VOC ones.
            assert stats[fmt][key] == pytest.approx(stats["voc"][key], rel=1e-3, abs=1e-9), (
                fmt,
                key,
            )


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
def test_predict_on_the_images_of_every_format(datasets, runs, fmt, tmp_path):
    source = next(p for p in sorted(datasets[fmt].rglob("*.jpg")))
    weights = str(runs / fmt / "weights" / "best.pt")
    assert (
        main(
            [
                "predict",
                "--weights",
                weights,
                "--source",
                str(source),
                "--save-json",
                "--conf",
                "0.0",
                "--project",
                str(tmp_path),
                "--name",
                "p",
            ]
        )
        == 0
    )
    saved = sorted((tmp_path / "p").rglob("*"))
    assert any(p.suffix == ".json" for p in saved)
    assert any(p.suffix == ".jpg" for p in saved)


def test_train_on_a_small_cpu_loads_in_the_main_process(datasets, tmp_path, capsys, monkeypatch):
    """No --workers: the loader runs between steps on a 2-core CPU; the run header says so."""
    from edgevision.data.datasets import loader

    monkeypatch.setattr(loader, "usable_cores", lambda: 2)
    flags = [f for f in TRAIN if f not in ("--workers", "0")] + ["--device", "cpu"]
    args = ["train", "--data", str(datasets["voc"]), "--project", str(tmp_path), "--name", "auto"]
    assert main(args + flags) == 0
    out = capsys.readouterr().out
    assert "loader: in the main process (training on 2 CPU core(s)" in out
    assert (tmp_path / "auto" / "results.csv").read_text().count("\n") == 2
