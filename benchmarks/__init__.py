"""The microscheduler benchmark suite: ``python -m benchmarks [--quick]``.

Every figure is a ratio against a hand-written baseline (:mod:`benchmarks.baselines`)
measured in the same process and event loop, never an absolute time. See README.md.
"""
