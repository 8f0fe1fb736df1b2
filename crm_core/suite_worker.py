"""``python -m crm_core.suite_worker``: the process :class:`crm_core.validation.SuiteWorker` starts.

It reads requests from stdin and writes answers to stdout (see
:func:`crm_core.validation.serve_worker`); anything GX prints goes to stderr.
"""

from __future__ import annotations

import sys

from crm_core.validation import serve_worker

if __name__ == "__main__":
    answers = sys.stdout.buffer
    sys.stdout = sys.stderr  # a print anywhere must not corrupt the answers
    serve_worker(sys.stdin.buffer, answers)
