"""flagdemo benchmarks: ``python -m benchmarks.run --help``."""
