"""Benchmarks of muckrack-python-hmr.

``python -m benchmarks`` measures cold restarts, the import-wrapper overhead
and reload latency on generated codebases (see :mod:`benchmarks.generate`);
``pytest benchmarks`` runs the pytest-benchmark micro-benchmarks.
"""
