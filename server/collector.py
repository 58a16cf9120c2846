"""Python's cycle collector tuned for a serving process (issue 10).

By default CPython collects the youngest objects every 700 allocations and now and then walks every
object the process holds: the app's routes, schemas, SQLAlchemy's mappers and compiled statements, all
of it alive until the process ends. In a sync push that was a tenth of the server's CPU
(bench/sync_bench.py). ``settle`` is called once a serving process has built its app: what exists then
is frozen out of the collector's walks (``gc.freeze``), and the youngest objects are collected every
10,000 allocations instead. Requests make few reference cycles (the ORM's are broken by the session
closing), so memory stays where it was; cycles are still collected.
"""

import gc

YOUNG_THRESHOLD = 10_000


def settle() -> None:
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, 20, 20)
