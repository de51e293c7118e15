from bench.azure import __doc__, measure
from bench.figures import run_alone

run_alone(measure, "python -m bench.azure", __doc__)
