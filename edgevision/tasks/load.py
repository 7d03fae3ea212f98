"""Reading a model back: ``.pt`` weights (PyTorch) or an exported ``.onnx`` (torch-free runtime),
with one read of the file, into a :class:`~edgevision.tasks.base.LoadedModel` of its task."""

from __future__ import annotations

from pathlib import Path

from edgevision.core.errors import CheckpointError, UnknownModelError
from edgevision.runtime.session import open_model
from edgevision.tasks.base import LoadedModel


def load_model(weights: str | Path) -> LoadedModel:
    """Read ``.pt`` weights (one checkpoint read) or an exported ``.onnx`` into a :class:`LoadedModel`
    of its task. A ``.pt`` needs PyTorch; an ``.onnx`` needs only ``edgevision.runtime``.

    Raises:
        CheckpointError: a missing, unsafe or non-edgevision file, or one for a task or model this
            edgevision does not know.
    """
    path = Path(weights)
    if path.suffix.lower() == ".onnx":
        return _load_onnx(path)
    return _load_checkpoint(path)


def _load_onnx(path: Path) -> LoadedModel:
    session = open_model(path)
    info = session.info
    meta = {
        "task": info.task,
        "model_name": info.model_name,
        "class_names": list(info.class_names),
        "num_classes": info.num_classes,
        "imgsz": info.imgsz[0],
        "head": info.head,
        "strides": list(info.strides),
        "codec": info.codec,
    }
    if info.keypoints:  # pose: K, flip_idx, names, skeleton, sigmas as the checkpoint had them
        meta["keypoints"] = dict(info.keypoints)
    return LoadedModel(info.task, path, session, meta)


def _load_checkpoint(path: Path) -> LoadedModel:
    from edgevision.engine.checkpoint import load_checkpoint, state_dict_from  # PyTorch
    from edgevision.models.zoo import build_model, task_of_model

    state = load_checkpoint(path)
    meta = dict(state.get("meta") or {})
    if "model_name" not in meta or "class_names" not in meta:
        raise CheckpointError(
            f"{path}: not an edgevision checkpoint (no model metadata); "
            "use a last.pt/best.pt written by `edgevision train`"
        )
    try:
        model = build_model(
            meta["model_name"],
            num_classes=int(meta["num_classes"]),
            num_keypoints=meta.get("num_keypoints"),  # pose models only
        )
        meta.setdefault("task", task_of_model(meta["model_name"]))
    except UnknownModelError as e:
        raise CheckpointError(f"{path}: {e}; was it written by a newer edgevision?") from e
    family = getattr(model, "codec", None)
    if family is not None:
        _check_head(path, meta, family.family)
    model.load_state_dict(state_dict_from(state))
    return LoadedModel(meta["task"], path, model.eval(), meta, state.get("config") or {})


def _check_head(path: Path, meta: dict, family: str) -> None:
    """Checkpoints from before head families were named are anchor-free; others must match."""
    meta.setdefault("head", family)
    if meta["head"] != family:
        raise CheckpointError(
            f"{path}: weights of a {meta['head']!r} head, but {meta['model_name']} has a "
            f"{family!r} head; was it written by a newer edgevision?"
        )
