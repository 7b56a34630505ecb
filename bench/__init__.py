"""Benchmarks of the exporter against the demo Devin API, on loopback: `python -m bench`.

Every server under test and the load generator run in processes of their own
(`bench.child`), so that none of them shares an interpreter, a GIL or an event loop with
another; the parent only starts them, sends commands and collects figures.
"""
