"""Benchmarks that print ratios against service limits: ``python -m bench.run`` (see README, Performance)."""
