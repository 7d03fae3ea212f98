"""Command line: argument parsing only. Each handler makes one API call and prints a summary."""

from __future__ import annotations

import argparse
import difflib
import sys
from dataclasses import fields

from edgevision import api
from edgevision.config import TrainConfig, field_comments
from edgevision.core.errors import ConfigError, EdgevisionError
from edgevision.core.version import __version__
from edgevision.demo import run_demo

# Help texts of options that several commands share.
WEIGHTS_HELP = "a .pt checkpoint or an exported .onnx"
SEED_HELP = "seed of every random choice"
DATA_HELP = "dataset: VOC root, COCO json, Ultralytics data YAML or edgevision data YAML"


class _HelpFormatter(argparse.HelpFormatter):
    """Appends each option's default to its help, so the two cannot disagree; not for defaults
    that say nothing (None, "", an off switch), nor where the help already states one."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        off_switch = default is False and not any(
            o.startswith("--no-") for o in action.option_strings
        )
        if (
            not action.option_strings
            or "%(default)" in text  # Python 3.10's BooleanOptionalAction adds its own
            or default in (None, "", argparse.SUPPRESS)
            or off_switch
        ):
            return text
        return f"{text} (default: %(default)s)"


class _Parser(argparse.ArgumentParser):
    """The command's parser; its sub-command parsers are of this class too (argparse builds them
    from the parent's type), so every ``--help`` shows the defaults the same way."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)


def _add_config_flags(parser: argparse.ArgumentParser, config_cls) -> None:
    """One flag per dataclass field, same name and default (``--no-ema`` style for booleans),
    its help the field's comment in :mod:`edgevision.config`."""
    defaults = config_cls()
    comments = field_comments(config_cls)
    for f in fields(config_cls):
        value = getattr(defaults, f.name)
        flag = f"--{f.name.replace('_', '-')}"
        text = comments.get(f.name, "").replace("%", "%%")  # argparse formats help with %
        if isinstance(value, bool):
            parser.add_argument(
                flag, dest=f.name, action=argparse.BooleanOptionalAction, default=value, help=text
            )
        else:
            parser.add_argument(flag, dest=f.name, type=type(value), default=value, help=text)


def _cmd_train(args) -> int:
    options = {f.name: getattr(args, f.name) for f in fields(TrainConfig)}
    summary = api.train(**options)
    print(
        f"done: {summary['epochs']} epochs in {summary['minutes']:.1f} min; run folder {summary['run_dir']}"
    )
    return 0


def _cmd_val(args) -> int:
    result = api.evaluate(
        args.weights,
        args.data,
        split=args.split,
        batch=args.batch,
        imgsz=args.imgsz,
        conf=args.conf,
        iou=args.iou,
        max_det=args.max_det,
        device=args.device,
        workers=args.workers,
        project=args.project,
        name=args.name,
        exist_ok=args.exist_ok,
        save_json=args.save_json,
        kpt_sigmas=args.kpt_sigmas,
    )
    print(result["text"])
    return 0


def _cmd_predict(args) -> int:
    results = api.predict(
        args.weights,
        args.source,
        imgsz=args.imgsz,
        conf=args.conf,
        iou=args.iou,
        max_det=args.max_det,
        device=args.device,
        save=args.save,
        save_json=args.save_json,
        project=args.project,
        name=args.name,
        exist_ok=args.exist_ok,
        topk=args.topk,
        strict=args.strict,
    )
    for result in results:
        print(result.summary())
    return 0


def _cmd_analyze(args) -> int:
    result = api.analyze(
        args.weights,
        args.data,
        split=args.split,
        folds=args.folds,
        fold_epochs=args.fold_epochs,
        review_conf=args.review_conf,
        batch=args.batch,
        imgsz=args.imgsz,
        conf=args.conf,
        iou=args.iou,
        max_det=args.max_det,
        device=args.device,
        workers=args.workers,
        project=args.project,
        name=args.name,
        exist_ok=args.exist_ok,
    )
    print(result["text"])
    return 0


def _cmd_report(args) -> int:
    print(f"report written to {api.report(args.run_dir, title=args.title)}")
    return 0


def _cmd_models(args) -> int:
    rows = api.list_models(task=args.task)
    print(
        f"{'name':<22} {'task':<8} {'imgsz':>5} {'params':>10} {'GFLOPs':>8}  measured latency (bench)"
    )
    for row in rows:
        latency = row.get("latency_ms") or {}
        measured = "  ".join(f"{engine} {ms:.2f} ms" for engine, ms in latency.items()) or "-"
        print(
            f"{row['name']:<22} {row['task']:<8} {row['imgsz']:>5} {row['params']:>10,} {row['gflops']:>8.3f}  "
            f"{measured}"
        )
    return 0


def _cmd_export(args) -> int:
    api.export(
        args.weights,
        format=args.format,
        imgsz=args.imgsz,
        nms=args.nms,
        dynamic=args.dynamic,
        int8=args.int8,
        data=args.data,
        opset=args.opset,
        max_det=args.max_det,
        conf=args.conf,
        iou=args.iou,
        out=args.out,
        simplify=args.simplify,
        calibration_images=args.calibration_images,
        int8_threads=args.int8_threads,
        int8_keep_slower=args.int8_keep_slower,
    )
    return 0


def _cmd_bench(args) -> int:
    result = api.bench(
        model=args.model,
        weights=args.weights,
        imgsz=args.imgsz,
        threads=args.threads,
        runs=args.runs,
        warmup=args.warmup,
        int8=args.int8,
        data=args.data,
        pytorch=args.pytorch,
    )
    print(result["text"])
    return 0


def _cmd_demo(args) -> int:
    report = run_demo(
        project=args.project,
        name=args.name,
        minutes=args.minutes,
        workers=args.workers,
        task=args.task,
    )
    print(report)
    return 0


def _cmd_data_check(args) -> int:
    code, text = api.data_check(
        args.data,
        deep=args.deep,
        fix=args.fix,
        out=args.out,
        in_place=args.in_place,
        workers=args.workers,
        json_path=args.json,
        apply_review=args.apply_review,
    )
    print(text)
    return code


def _cmd_data_stats(args) -> int:
    text, out = api.data_stats(
        args.data, split=args.split, project=args.project, name=args.name, exist_ok=args.exist_ok
    )
    print(f"{text}\nreport and plots: {out}")
    return 0


def _cmd_data_split(args) -> int:
    print(api.data_split(args.data, val=args.val, test=args.test, seed=args.seed, force=args.force))
    return 0


def _cmd_data_convert(args) -> int:
    out, issues = api.data_convert(args.data, args.to, args.out)
    for issue in issues:
        print(f"  {issue}")
    print(
        f"converted to {args.to}: {out}"
        + (f" ({len(issues)} data issues listed above)" if issues else "")
    )
    return 0


def _cmd_data_anchors(args) -> int:
    print(
        api.data_anchors(
            args.data,
            k=args.k,
            imgsz=args.imgsz,
            restarts=args.restarts,
            generations=args.generations,
            seed=args.seed,
            project=args.project,
            name=args.name,
            exist_ok=args.exist_ok,
        )
    )
    return 0


def _cmd_data_synth(args) -> int:
    out = api.data_synth(
        args.out,
        task=args.task,
        n_train=args.n_train,
        n_val=args.n_val,
        seed=args.seed,
        force=args.force,
        num_keypoints=args.num_keypoints,
    )
    print(f"demo dataset written: {out}")
    return 0


def _cmd_data_sigmas(args) -> int:
    print(api.data_sigmas(args.data, split=args.split, sigmas=args.sigmas))
    return 0


def _add_data_commands(commands) -> None:
    data = commands.add_parser(
        "data", help="check, fix, describe, split, convert, cluster, synthesise data"
    )
    sub = data.add_subparsers(dest="data_command", metavar="DATA_COMMAND")

    p = sub.add_parser("check", help="the data doctor: every defect with file and fix")
    p.add_argument("data", help=DATA_HELP)
    p.add_argument("--deep", action="store_true", help="decode every image (default reads headers)")
    p.add_argument("--fix", action="store_true", help="repair what can be repaired")
    p.add_argument("--out", default="", help="with --fix: write a fixed copy here")
    p.add_argument(
        "--in-place",
        dest="in_place",
        action="store_true",
        help="with --fix: edit, keeping .bak files",
    )
    p.add_argument("--workers", type=int, default=2, help="processes reading the files")
    p.add_argument("--json", default="", help="also write the report as JSON to this file")
    p.add_argument(
        "--apply-review",
        dest="apply_review",
        default="",
        metavar="FILE",
        help="apply the rows marked accept=yes of an analyze label_review.csv "
        "(with --out DIR or --in-place)",
    )
    p.set_defaults(handler=_cmd_data_check)

    p = sub.add_parser("stats", help="class counts, box sizes, COCO small/medium/large, plots")
    p.add_argument("data", help=DATA_HELP)
    p.add_argument("--split", default="all", help="all | train | val | test")
    _add_output_flags(p, "stats")
    p.set_defaults(handler=_cmd_data_stats)

    p = sub.add_parser("split", help="write stratified train/val/test lists")
    p.add_argument("data", help=DATA_HELP)
    p.add_argument("--val", type=float, default=0.1, help="share of images for val")
    p.add_argument("--test", type=float, default=0.1, help="share of images for test")
    p.add_argument("--seed", type=int, default=0, help=SEED_HELP)
    p.add_argument("--force", action="store_true", help="overwrite existing split files")
    p.set_defaults(handler=_cmd_data_split)

    p = sub.add_parser("convert", help="convert between VOC, COCO and YOLO")
    p.add_argument("data", help=DATA_HELP)
    p.add_argument("--to", required=True, choices=["voc", "coco", "yolo"], help="target format")
    p.add_argument("--out", required=True, help="a new folder for the converted copy")
    p.set_defaults(handler=_cmd_data_convert)

    p = sub.add_parser(
        "anchors", help="k-means (1 - IoU) anchors with mean IoU and best possible recall"
    )
    p.add_argument("data", help=DATA_HELP)
    p.add_argument("-k", type=int, default=9, help="number of anchors")
    p.add_argument(
        "--imgsz",
        type=int,
        default=416,
        help="box sizes as letterboxed to this input size",
    )
    p.add_argument("--restarts", type=int, default=10, help="k-means runs from new seeds")
    p.add_argument(
        "--generations", type=int, default=300, help="genetic refinement steps (0 = off)"
    )
    p.add_argument("--seed", type=int, default=0, help=SEED_HELP)
    _add_output_flags(p, "anchors")
    p.set_defaults(handler=_cmd_data_anchors)

    p = sub.add_parser("synth", help="generate the embedded demo dataset")
    p.add_argument("out", help="a new folder for the dataset")
    p.add_argument(
        "--task", default="detect", choices=api.synth_tasks(), help="what the dataset is for"
    )
    p.add_argument("--n-train", dest="n_train", type=int, default=600, help="training images")
    p.add_argument("--n-val", dest="n_val", type=int, default=150, help="validation images")
    p.add_argument("--seed", type=int, default=0, help=SEED_HELP)
    p.add_argument(
        "--force", action="store_true", help="replace an earlier synthetic dataset there"
    )
    p.add_argument(
        "--num-keypoints",
        dest="num_keypoints",
        type=int,
        default=None,
        help="keypoints per figure (--task pose; default 5)",
    )
    p.set_defaults(handler=_cmd_data_synth)

    p = sub.add_parser(
        "sigmas", help="the OKS sigmas pose evaluation uses, and an estimate from repeated labels"
    )
    p.add_argument("data", help=DATA_HELP)
    p.add_argument("--split", default="all", help="all | train | val | test")
    p.add_argument("--sigmas", type=float, nargs="+", help="yours, to check against the data")
    p.set_defaults(handler=_cmd_data_sigmas)
    data.set_defaults(handler=lambda args: (data.print_help(), 2)[1])


def _add_output_flags(p: argparse.ArgumentParser, name: str, project: str = "runs/data") -> None:
    p.add_argument("--project", default=project, help="parent folder of run folders")
    p.add_argument("--name", default=name, help="run folder name under project")
    p.add_argument(
        "--exist-ok",
        dest="exist_ok",
        action="store_true",
        help="reuse project/name instead of creating name2, name3, ...",
    )


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="edgevision", description="Lightweight vision models for your own data.")
    parser.add_argument("--version", action="version", version=f"edgevision {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    _add_data_commands(commands)

    p = commands.add_parser("train", help="train a model on your data")
    _add_config_flags(p, TrainConfig)
    p.set_defaults(handler=_cmd_train)

    p = commands.add_parser("val", help="evaluate weights on a split: COCO + VOC metrics")
    p.add_argument("--weights", required=True, help=WEIGHTS_HELP)
    p.add_argument("--data", required=True, help=DATA_HELP)
    p.add_argument(
        "--split", default="val", choices=["train", "val", "test"], help="the split to evaluate"
    )
    _add_inference_flags(p, conf=0.001, iou=0.6, project="runs/val")
    _add_loader_flags(p)
    p.add_argument(
        "--kpt-sigmas",
        dest="kpt_sigmas",
        type=float,
        nargs="+",
        help="pose: OKS sigma per keypoint (default: the data's, COCO's for COCO person, else 0.05)",
    )
    p.set_defaults(handler=_cmd_val)

    p = commands.add_parser(
        "analyze", help="where the AP is lost, which labels look wrong, and report.html"
    )
    p.add_argument("--weights", required=True, help=WEIGHTS_HELP)
    p.add_argument("--data", required=True, help=DATA_HELP)
    p.add_argument(
        "--split", default="val", choices=["train", "val", "test"], help="the split to evaluate"
    )
    p.add_argument(
        "--folds", type=int, default=0, help="K >= 2: judge labels with out-of-fold models"
    )
    p.add_argument(
        "--fold-epochs", dest="fold_epochs", type=int, default=0, help="0 = the weights' epochs"
    )
    p.add_argument(
        "--review-conf",
        dest="review_conf",
        type=float,
        default=0.5,
        help="detections this confident can suggest a label change",
    )
    _add_inference_flags(p, conf=0.001, iou=0.6, project="runs/analyze")
    _add_loader_flags(p)
    p.set_defaults(handler=_cmd_analyze)

    p = commands.add_parser("report", help="(re)write a run folder's self-contained report.html")
    p.add_argument("run_dir", help="a train / val / analyze run folder")
    p.add_argument("--title", default="", help="the page's title (default: the run folder's name)")
    p.set_defaults(handler=_cmd_report)

    p = commands.add_parser(
        "predict", help="run .pt or .onnx weights on images, folders, globs, videos"
    )
    p.add_argument("--weights", required=True, help=WEIGHTS_HELP)
    p.add_argument(
        "--source", required=True, help="an image, a folder, a glob (quoted) or a video file"
    )
    _add_inference_flags(p, conf=0.25, iou=0.45, project="runs/predict")
    p.add_argument(
        "--save",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="write annotated copies into the run folder",
    )
    p.add_argument("--topk", type=int, default=5, help="classification: classes per image")
    p.add_argument(
        "--strict", action="store_true", help="stop at the first unreadable file (default: skip it)"
    )
    p.set_defaults(handler=_cmd_predict)

    p = commands.add_parser(
        "export", help="export to ONNX (parity-checked; --nms in graph; --int8)"
    )
    p.add_argument("--weights", required=True, help="a .pt checkpoint (last.pt / best.pt)")
    p.add_argument("--format", default="onnx", choices=["onnx"], help="the file format")
    p.add_argument("--imgsz", type=int, default=0, help="0 = the size the model was trained at")
    p.add_argument("--nms", action="store_true", help="decode + NonMaxSuppression inside the graph")
    p.add_argument("--dynamic", action="store_true", help="dynamic batch and image size")
    p.add_argument(
        "--int8", action="store_true", help="also write a static INT8 (QDQ) model; needs --data"
    )
    p.add_argument("--data", default="", help="calibration images for --int8 (and parity samples)")
    p.add_argument(
        "--calibration-images",
        dest="calibration_images",
        type=int,
        default=100,
        help="images from --data that calibrate --int8",
    )
    p.add_argument(
        "--int8-threads",
        dest="int8_threads",
        type=int,
        default=2,
        help="threads of the FP32-vs-INT8 speed check (your target's)",
    )
    p.add_argument(
        "--int8-keep-slower",
        dest="int8_keep_slower",
        action="store_true",
        help="write the INT8 model even when it is slower than FP32 on this CPU",
    )
    p.add_argument("--opset", type=int, default=17, help="ONNX opset")
    p.add_argument(
        "--max-det",
        dest="max_det",
        type=int,
        default=100,
        help="with --nms: detections kept per image",
    )
    p.add_argument("--conf", type=float, default=0.25, help="with --nms: score threshold")
    p.add_argument("--iou", type=float, default=0.45, help="with --nms: NMS IoU threshold")
    p.add_argument("--out", default="", help="output .onnx path (default: beside the weights)")
    p.add_argument(
        "--simplify",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="shrink the graph with onnxslim when installed, parity-checked",
    )
    p.set_defaults(handler=_cmd_export)

    p = commands.add_parser("bench", help="params, FLOPs, latency and fraction of this CPU's peak")
    p.add_argument("--model", default="", help="a zoo name, with random weights (or --weights)")
    p.add_argument("--weights", default="", help=WEIGHTS_HELP)
    p.add_argument("--imgsz", type=int, default=0, help="0 = the model's or checkpoint's size")
    p.add_argument("--threads", type=int, default=2, help="intra-op threads of every engine")
    p.add_argument("--runs", type=int, default=100, help="timed inferences per engine")
    p.add_argument("--warmup", type=int, default=10, help="untimed inferences first")
    p.add_argument(
        "--int8",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time an INT8 model",
    )
    p.add_argument(
        "--pytorch",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time PyTorch eager",
    )
    p.add_argument("--data", default="", help="calibration images for the INT8 timing")
    p.set_defaults(handler=_cmd_bench)

    p = commands.add_parser("models", help="the model zoo: task, params, FLOPs, default size")
    p.add_argument("--task", default="", help="only this task's models")
    p.set_defaults(handler=_cmd_models)

    p = commands.add_parser(
        "demo", help="synthesise data, train a small model, validate, export, predict, report"
    )
    p.add_argument("--project", default="runs", help="parent folder of the run")
    p.add_argument("--name", default="demo", help="run folder name")
    p.add_argument(
        "--minutes", type=float, default=7.5, help="training budget (the whole demo stays under 10)"
    )
    p.add_argument("--workers", type=int, default=TrainConfig.workers, help="-1: as train decides")
    p.add_argument(
        "--task", default="detect", choices=["detect", "pose"], help="pose: keypoints demo"
    )
    p.set_defaults(handler=_cmd_demo)
    return parser


def _add_inference_flags(p: argparse.ArgumentParser, conf: float, iou: float, project: str) -> None:
    p.add_argument("--imgsz", type=int, default=0, help="0 = the size the model was trained at")
    p.add_argument("--conf", type=float, default=conf, help="detection score threshold")
    p.add_argument("--iou", type=float, default=iou, help="NMS IoU threshold")
    p.add_argument(
        "--max-det",
        dest="max_det",
        type=int,
        default=300,
        help="detections kept per image",
    )
    p.add_argument("--device", default="", help='cpu | cuda | cuda:N; "" = cuda when available')
    p.add_argument(
        "--save-json",
        dest="save_json",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="write predictions.json into the run folder (boxes as COCO results)",
    )
    _add_output_flags(p, "exp", project)


def _add_loader_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--batch", type=int, default=16, help="images per batch")
    p.add_argument("--workers", type=int, default=2, help="data-loading worker processes")


TORCH_MODULES = ("torch", "torchvision")  # what the training side needs and a device lacks


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``edgevision`` command. Exit codes: 0 ok, 1 failure/defects, 2 usage."""
    parser = _build_parser()
    argv = sys.argv[1:] if argv is None else argv
    known = set(parser._subparsers._group_actions[0].choices)  # noqa: SLF001 (argparse has no public API)
    if argv and not argv[0].startswith("-") and argv[0] not in known:
        close = difflib.get_close_matches(argv[0], sorted(known), n=2)
        print(
            f"edgevision: unknown command {argv[0]!r}"
            + (f"; did you mean {' or '.join(close)}?" if close else ""),
            file=sys.stderr,
        )
        return 2
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return args.handler(args)
    except EdgevisionError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2 if isinstance(e, ConfigError) else 1
    except ModuleNotFoundError as e:
        if e.name not in TORCH_MODULES:
            raise
        print(
            f"error: `edgevision {args.command}` needs PyTorch here ({e.msg}); install it first, the CPU "
            "build with: pip install torch --index-url https://download.pytorch.org/whl/cpu "
            "(the data commands and predict / val / bench of an .onnx run without it)",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
