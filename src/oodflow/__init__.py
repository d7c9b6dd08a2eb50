"""oodflow: workflow-managed, reproducible out-of-distribution detection benchmarks.

Sign convention used everywhere: every score is "higher = more in-distribution" (ID).
"""

__version__ = "0.1.0"
