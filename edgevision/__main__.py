"""``python -m edgevision`` (also what ``torchrun -m edgevision`` runs)."""

from edgevision.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
