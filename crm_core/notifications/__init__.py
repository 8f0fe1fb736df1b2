"""The notification centre's work outside a request: group-robot delivery and the daily task sweep (jobs)."""
