"""Garbage-collector settings for long-running processes (the service, pool workers).

Two measured problems, one call:

* Everything alive after start-up (modules, the app, sympy's warm caches)
  lives as long as the process. `gc.freeze()` moves it out of the collector's
  generations, so collections stop rescanning it: about a third of the cost
  of a small request.
* Full collections scan every tracked object, and the caches of a running
  service (exact pairs, verdicts, feedback records) keep growing: with the
  default thresholds a 10,000-item batch cost 1.6x per item what a
  1,000-item batch did. Collecting the oldest generation after 100 younger
  collections instead of 10 restores linear scaling; reference cycles, rare
  in this code, wait a little longer to be freed.
"""

from __future__ import annotations

import gc

#: (gen0 allocations, gen0 collections per gen1, gen1 collections per full collection)
THRESHOLDS = (700, 10, 100)


def settle_heap() -> None:
    """Collect once, freeze what survives, and make full collections rarer."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
