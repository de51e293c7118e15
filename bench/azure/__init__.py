"""Azure Container Instances benchmarks: `.venv/bin/python -m bench.azure`."""
