"""Pure business rules: no database, no I/O; tested with parametrize tables."""
