"""Benchmark suite (issue 6): batch anchoring against a per-record registry and EAS.

Run everything with ``python -m bench`` (``make bench``); it writes ``bench/report.md``
and ``bench/chart.png``. Not part of the product and not imported by it.
"""
