"""Data quality: checks on the live database, their suites, runs and history (see ``checks`` and ``runs``)."""
