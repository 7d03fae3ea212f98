"""``python -m edgevision`` (also what ``torchrun -m edgevision`` runs)."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
