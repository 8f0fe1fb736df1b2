"""``python -m benchmarks NAME [options]``: run the benchmark module ``benchmarks/NAME.py``."""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
from pathlib import Path


def available() -> list[str]:
    """The benchmark modules present in this package."""
    modules = pkgutil.iter_modules([str(Path(__file__).parent)])
    return sorted(info.name for info in modules if not info.name.startswith("_"))


def main(argv: list[str]) -> int:
    """Dispatch to ``benchmarks.<name>.main(rest)``."""
    names = available()
    if not argv or argv[0] not in names:
        print(f"usage: python -m benchmarks {{{','.join(names)}}} [options]", file=sys.stderr)
        return 2
    # the benchmarks sign in as the demo users of the 1M-customer demo database
    os.environ.setdefault("CRM_DEMO_MODE", "1")
    module = importlib.import_module(f"benchmarks.{argv[0]}")
    return int(module.main(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
