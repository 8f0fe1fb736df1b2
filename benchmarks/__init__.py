"""Speed figures: commands that print timings and ratios against raw SQL (``python -m benchmarks NAME``)."""
