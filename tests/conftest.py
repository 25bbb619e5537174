"""Test-wide settings: must run before torch is imported by any test module."""

import os

# A spinning OpenMP pool makes torch 40-70x slower when another process (llvmpipe, a second
# test worker) shares the two cores; the viewer and the benchmarks set the same.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
