"""``tickwire bench``: the benchmark harness (code in :mod:`tickwire.bench.harness`)."""

from .harness import BenchAgent, BenchBatchAgent, BenchPlayer, all_backends, main

__all__ = ["BenchAgent", "BenchBatchAgent", "BenchPlayer", "all_backends", "main"]
