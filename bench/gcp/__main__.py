from bench.figures import run_alone
from bench.gcp import __doc__, measure

run_alone(measure, "python -m bench.gcp", __doc__)
