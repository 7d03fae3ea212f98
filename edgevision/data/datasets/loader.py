"""Batching for detection: the collate function, the DataLoader and its seeded sampler.

- :func:`detection_collate` turns samples of :class:`~edgevision.data.datasets.detect.DetectionDataset`
  into the training batch contract;
- :class:`DetectionLoader` moves uint8 images between processes and converts them to float in
  the main process (:func:`images_to_float`);
- :class:`EpochShuffleSampler` shuffles from ``(seed, epoch)`` alone, so the order does not
  depend on the worker count or on resuming;
- :func:`build_dataloader` puts them together with persistent, seeded workers;
- :func:`training_workers` decides how many worker processes a training run uses.
"""

from __future__ import annotations

import os

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from edgevision.core.errors import ConfigError


def images_to_float(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) uint8 -> float32 in [0, 1]. Through numpy: its allocator uses huge pages, which
    made this 40 MB allocation several times faster than torch's in measurements here."""
    return torch.from_numpy(np.divide(images.numpy(), np.float32(255), dtype=np.float32))


def detection_collate(batch: list[dict], float_images: bool = True) -> dict:
    """Samples -> the training batch contract.

    Args:
        float_images: False keeps ``images`` uint8 (what :class:`DetectionLoader` workers send).

    Returns:
        ``images`` (B, 3, H, W) float32 in [0, 1]; ``targets`` (M, 6) float32 rows
        ``[image_index, class, x0, y0, x1, y1]``; ``keypoints`` (M, K, 3) when samples have them;
        ``meta`` list of B dicts.
    """
    images = torch.stack([item["image"] for item in batch])
    counts = torch.tensor([len(item["boxes"]) for item in batch])
    image_index = torch.repeat_interleave(torch.arange(len(batch)), counts)
    labels = torch.cat([item["labels"] for item in batch])
    boxes = torch.cat([item["boxes"] for item in batch]).reshape(-1, 4)
    out = {
        "images": images_to_float(images) if float_images else images,
        "targets": torch.cat([image_index[:, None].float(), labels[:, None].float(), boxes], 1),
        "meta": [item["meta"] for item in batch],
    }
    if batch[0]["keypoints"] is not None:
        out["keypoints"] = torch.cat([item["keypoints"] for item in batch])
    return out


def _collate_uint8(batch: list[dict]) -> dict:
    return detection_collate(batch, float_images=False)


class DetectionLoader(DataLoader):
    """DataLoader whose workers hand over uint8 images and whose main process converts them.

    Moving float32 batches between processes cost about 1 ms more CPU per image than uint8 plus
    one conversion here (measured with 2 workers, mosaic, RAM cache). Batches still meet the
    contract (float32 [0, 1]) unless built with ``float_images=False``, for a GPU trainer that
    would rather convert on the device.
    """

    def __init__(self, *args, float_images: bool = True, **kwargs) -> None:
        super().__init__(*args, collate_fn=_collate_uint8, **kwargs)
        self.float_images = float_images

    def __iter__(self):
        for batch in super().__iter__():
            if self.float_images:
                batch["images"] = images_to_float(batch["images"])
            yield batch


class EpochShuffleSampler(Sampler[int]):
    """Shuffled indices drawn from ``(seed, dataset.epoch)`` alone.

    DataLoader's own shuffling consumes its generator differently with and without workers and
    depends on how many epochs ran before; this order is the same for any worker count and after
    a resume. ``dataset.set_epoch(e)`` moves it to the next epoch.
    """

    def __init__(self, dataset: Dataset, seed: int = 0) -> None:
        self.dataset, self.seed = dataset, seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __iter__(self):
        epoch = getattr(self.dataset, "epoch", 0)
        return iter(np.random.default_rng([self.seed, epoch]).permutation(len(self)).tolist())


AUTO_WORKERS = -1  # --workers default: training_workers decides
DEFAULT_WORKERS = 2  # worker processes where they can pay: a GPU to feed, or cores to spare
FEW_CORES = 4  # CPU training on at most this many cores loads in the main process


def usable_cores() -> int:
    """Cores this process may run on (``taskset`` and container limits included)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def training_workers(
    requested: int, device: torch.device, cores: int | None = None
) -> tuple[int, str]:
    """Worker processes for a training run's loaders, and the log line that says why.

    ``requested`` is ``--workers``; :data:`AUTO_WORKERS` decides: none when training on a CPU
    with at most :data:`FEW_CORES` cores, else :data:`DEFAULT_WORKERS`. There the model's
    intra-op threads take every core, and a worker that preempts one of them stalls the whole
    parallel region, while loading a sample costs a few ms against ~30 ms of forward and backward.
    Measured on the photo benchmark set (nano-s, 320 px, batch 32, 2 cores; benchmarks/RESULTS.md):
    two epochs in 116-118 s with the loader in the main process against 139-144 s with 2 workers
    from the RAM cache, and 119 s against 124 s decoding from disk; the classifier at 128 px
    trained 69 epochs in 5 minutes against 68 (its loader is a larger share of its step). The
    batches are the same either way (per-sample seeds, :class:`EpochShuffleSampler`).
    """
    if requested >= 0:
        return requested, f"loader: {requested} worker process(es) (--workers {requested})"
    if requested != AUTO_WORKERS:
        raise ConfigError(
            f"--workers {requested}: use 0 (load in the main process), a positive count, "
            f"or {AUTO_WORKERS} to let training decide"
        )
    cores = usable_cores() if cores is None else cores
    if device.type == "cpu" and cores <= FEW_CORES:
        return 0, (
            f"loader: in the main process (training on {cores} CPU core(s): worker processes "
            "would take them from the model; --workers N to change)"
        )
    return DEFAULT_WORKERS, f"loader: {DEFAULT_WORKERS} worker processes (--workers N to change)"


def _worker_init(worker_id: int) -> None:
    """Per-worker setup: no OpenCV thread pool (workers are the parallelism) and a distinct
    legacy numpy seed for any third-party code (edgevision itself uses per-sample generators)."""
    cv2.setNumThreads(0)
    np.random.seed(torch.initial_seed() % 2**32)


def set_loader_epoch(dataset: Dataset, loader: DataLoader, epoch: int) -> None:
    """Move a :func:`seeded_loader` to ``epoch``: the dataset's augmentation seed and the sampler's
    order (the ``DistributedSampler`` keeps its own epoch; ``EpochShuffleSampler`` reads the
    dataset's)."""
    dataset.set_epoch(epoch)
    sampler = getattr(loader, "sampler", None)
    if hasattr(sampler, "set_epoch"):
        sampler.set_epoch(epoch)


def seeded_loader(
    dataset: Dataset,
    batch_size: int,
    workers: int,
    shuffle: bool,
    seed: int = 0,
    distributed: bool = False,
    drop_last: bool = False,
    pin_memory: bool | None = None,
    loader_class: type[DataLoader] = DataLoader,
    **loader_options,
) -> DataLoader:
    """The loader every task uses: order from ``(seed, dataset.epoch)`` and persistent workers.

    Shuffling follows ``dataset.set_epoch`` (:class:`EpochShuffleSampler`). With
    ``distributed=True`` a ``DistributedSampler`` shards the data; the trainer calls
    ``loader.sampler.set_epoch(e)`` (order) and ``dataset.set_epoch(e)`` (augmentation).
    ``pin_memory`` defaults to whether CUDA is available. ``loader_class`` and ``loader_options``
    (``collate_fn``, ``float_images`` ...) say what a batch looks like.
    """
    sampler = EpochShuffleSampler(dataset, seed) if shuffle else None
    if distributed:
        # drop_last: no sample is repeated to even out the shards (the default pads by repeating);
        # at most world_size - 1 are left out, a different few each epoch.
        sampler = DistributedSampler(dataset, shuffle=shuffle, seed=seed, drop_last=True)
    generator = torch.Generator()
    generator.manual_seed(seed)
    return loader_class(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        pin_memory=torch.cuda.is_available() if pin_memory is None else pin_memory,
        drop_last=drop_last,
        persistent_workers=workers > 0,
        worker_init_fn=_worker_init if workers > 0 else None,
        generator=generator,
        **loader_options,
    )


def build_dataloader(
    dataset: Dataset,
    batch_size: int,
    workers: int,
    shuffle: bool,
    seed: int = 0,
    distributed: bool = False,
    drop_last: bool = False,
    pin_memory: bool | None = None,
    float_images: bool = True,
) -> DetectionLoader:
    """The detection :func:`seeded_loader`: a :class:`DetectionLoader` (uint8 across processes,
    float batches out unless ``float_images=False``, for on-device conversion)."""
    return seeded_loader(
        dataset,
        batch_size,
        workers,
        shuffle,
        seed,
        distributed,
        drop_last,
        pin_memory,
        loader_class=DetectionLoader,
        float_images=float_images,
    )
