"""``data convert`` between COCO keypoints and YOLO-pose loses nothing: boxes and points within
1e-4 px, visibility exact, keypoint names, skeleton, flip_idx and sigmas kept, both ways."""

from __future__ import annotations

import json

import numpy as np
import yaml

from edgevision.core.records import RecordSet
from edgevision.data.convert import convert_dataset
from edgevision.data.formats import load_dataset
from tests.data.pose_cases import FLIP, NAMES, SIGMAS, SKELETON, image, yolo_pose

SIZES = {"a": (640, 480), "b": (333, 250), "c": (97, 211)}


def _random_coco(root, split: str, seed: int) -> None:
    """Objects with 4-decimal coordinates (COCO's precision), some points hidden (v = 1) or not
    labelled (0, 0, 0), a few outside their image (COCO allows it)."""
    rng = np.random.default_rng(seed)
    images, annotations = [], []
    for image_id, (stem, (width, height)) in enumerate(SIZES.items(), start=1):
        image(root / "images" / split / f"{stem}.jpg", width, height)
        images.append(
            {"id": image_id, "file_name": f"{stem}.jpg", "width": width, "height": height}
        )
        for _ in range(3):
            x0, y0 = rng.uniform(0, [width * 0.6, height * 0.6]).round(4)
            w, h = rng.uniform(5, [width * 0.4, height * 0.4]).round(4)
            points = rng.uniform(-2, [width + 2, height + 2], (4, 2)).round(4)
            visibility = rng.integers(0, 3, 4)
            points[visibility == 0] = 0
            flat = []
            for (x, y), vis in zip(points, visibility, strict=True):
                flat += [float(x), float(y), int(vis)]
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": 3,
                    "bbox": [float(x0), float(y0), float(w), float(h)],
                    "keypoints": flat,
                    "num_keypoints": int((visibility > 0).sum()),
                    "iscrowd": 0,
                }
            )
    skeleton = [[a + 1, b + 1] for a, b in SKELETON]
    category = {"id": 3, "name": "person", "keypoints": NAMES, "skeleton": skeleton}
    data = {"images": images, "annotations": annotations, "categories": [category]}
    data["edgevision"] = {"flip_idx": FLIP, "kpt_oks_sigmas": SIGMAS}
    json_path = root / "annotations" / f"instances_{split}.json"
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(data))


def _assert_same(original: RecordSet, other: RecordSet) -> None:
    assert other.class_names == original.class_names
    assert other.kpt_names == original.kpt_names and other.skeleton == original.skeleton
    assert other.flip_idx == original.flip_idx
    np.testing.assert_allclose(other.kpt_sigmas, original.kpt_sigmas, rtol=1e-12)
    by_stem = {r.image_path.stem: r for r in other.records}
    assert sorted(by_stem) == sorted(r.image_path.stem for r in original.records)
    for record in original.records:
        again = by_stem[record.image_path.stem]
        assert (again.width, again.height) == (record.width, record.height)
        np.testing.assert_allclose(again.boxes, record.boxes, atol=1e-4, rtol=0)
        np.testing.assert_allclose(again.keypoints[..., :2], record.keypoints[..., :2], atol=1e-4)
        np.testing.assert_array_equal(again.keypoints[..., 2], record.keypoints[..., 2])
        assert again.labels.tolist() == record.labels.tolist()


def test_coco_to_yolo_to_coco_is_lossless(tmp_path):
    for split, seed in (("train", 0), ("val", 1)):
        _random_coco(tmp_path / "coco", split, seed)
    yolo = convert_dataset(tmp_path / "coco", "yolo", tmp_path / "yolo")
    back = convert_dataset(yolo, "coco", tmp_path / "back")
    for split in ("train", "val"):
        original, _ = load_dataset(tmp_path / "coco", split)
        assert original.kpt_sigmas == SIGMAS and original.num_objects == 9
        _assert_same(original, load_dataset(yolo, split)[0])
        _assert_same(original, load_dataset(back, split)[0])
    config = yaml.safe_load((yolo / "data.yaml").read_text())
    assert config["kpt_shape"] == [4, 3] and config["flip_idx"] == FLIP
    assert config["kpt_names"] == {0: NAMES} and config["kpt_oks_sigmas"] == SIGMAS
    assert config["skeleton"] == [list(edge) for edge in SKELETON]
    written = json.loads((back / "annotations" / "instances_train.json").read_text())
    assert written["edgevision"] == {"flip_idx": FLIP, "kpt_oks_sigmas": SIGMAS}
    assert written["categories"][0]["skeleton"] == [[1, 2], [1, 3], [1, 4]]
    for annotation in written["annotations"]:
        visibility = annotation["keypoints"][2::3]
        assert annotation["num_keypoints"] == sum(v > 0 for v in visibility)


def _random_yolo(root, dims: int) -> None:
    """Label lines with 6 decimals, as Ultralytics writes them; points at 0 0 [0] not labelled."""
    rng = np.random.default_rng(dims)
    labels = {}
    for stem in SIZES:
        lines = []
        for _ in range(3):
            box = [*rng.uniform(0.2, 0.8, 2), *rng.uniform(0.05, 0.3, 2)]
            points = rng.uniform(0, 1, (4, 2))
            visibility = rng.integers(0, 3, 4) if dims == 3 else rng.integers(0, 2, 4) * 2
            points[visibility == 0] = 0
            fields = [f"{v:.6f}" for v in box]
            for (x, y), vis in zip(points, visibility, strict=True):
                fields += [f"{x:.6f}", f"{y:.6f}"] + ([str(vis)] if dims == 3 else [])
            lines.append(" ".join([str(rng.integers(0, 2)), *fields]))
        labels[stem] = "\n".join(lines) + "\n"
    yolo_pose(root, labels, {"kpt_shape": [4, dims]})
    for stem, size in SIZES.items():  # yolo_pose draws every image at one size
        image(root / "images" / "train" / f"{stem}.jpg", *size)


def test_yolo_to_coco_to_yolo_is_lossless(tmp_path):
    for dims in (3, 2):
        root = tmp_path / f"dims{dims}"
        _random_yolo(root / "yolo", dims)
        coco = convert_dataset(root / "yolo", "coco", root / "coco")
        back = convert_dataset(coco, "yolo", root / "back")
        original, issues = load_dataset(root / "yolo", "train")
        assert issues == [] and original.num_objects == 9
        assert original.kpt_names == NAMES and original.kpt_sigmas == SIGMAS
        _assert_same(original, load_dataset(coco, "train")[0])
        _assert_same(original, load_dataset(back, "train")[0])
        visibility = np.concatenate([r.keypoints[..., 2].ravel() for r in original.records])
        assert set(visibility.tolist()) == ({0.0, 1.0, 2.0} if dims == 3 else {0.0, 2.0})
