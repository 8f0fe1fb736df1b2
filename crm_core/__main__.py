"""``python -m crm_core`` entry point."""

import sys

from crm_core.cli import main

sys.exit(main())
