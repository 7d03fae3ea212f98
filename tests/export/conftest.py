"""The export tests run PyTorch on one thread (see ``tests.detector.one_torch_thread``)."""

from tests.detector import one_torch_thread

__all__ = ["one_torch_thread"]
