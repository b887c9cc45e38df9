"""Benchmarks: what users of this starter pay and wait for (``make bench``).

Benchmarks report; they are not tests. Each figure sits beside its floor (measured in
the same run where one exists) and its target in ``docs/benchmarks.md``.
"""
