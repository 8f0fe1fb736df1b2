"""``python -m crm_core`` entry point."""

import sys

from crm_core.cli import main

if __name__ == "__main__":
    sys.exit(main())
