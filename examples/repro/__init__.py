"""Building blocks of examples/reproduce_paper.py: jobs, the protocol, the analysis."""
