from bench.aws import __doc__, measure
from bench.figures import run_alone

run_alone(measure, "python -m bench.aws", __doc__)
