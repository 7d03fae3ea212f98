"""edgevision: lightweight vision models on your own data, trained on a laptop, shipped to the edge."""

__version__ = "0.1.0"

__all__ = ["__version__"]
