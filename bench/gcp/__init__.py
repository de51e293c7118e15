"""Cloud Run benchmarks: write calls per run, and a 300-run burst against Cloud Run's job-run quota (180 a minute),
both through the real `google-cloud-run` client and the local fake. `.venv/bin/python -m bench.gcp`"""
