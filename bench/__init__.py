"""driftloop's benchmark suite.

``python -m bench.run --section serving --quick --out DIR`` runs one section;
``make bench`` / ``make bench-quick`` run them all. Every figure is written
with its baseline, the ratio to it, its unit, the machine and the date
(:mod:`bench.results`), then rendered as ``results.md`` next to the JSON.
"""
