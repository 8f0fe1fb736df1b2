"""Imports: read CSV/XLSX files, map columns, validate with Great Expectations, write, revert.

- :mod:`.reading`  encoding/delimiter detection, streamed chunks, preview
- :mod:`.fields`   importable fields per entity and header suggestions (English and Chinese)
- :mod:`.mapping`  the mapping (columns, values, match keys) and the run options
- :mod:`.prepare`  cleaning, references by natural key, flags the suites expect on
- :mod:`.runner`   validate_import, run_import, revert_import, rejected rows as CSV
- :mod:`.templates` saved mappings and the run history
"""
