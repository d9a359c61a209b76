"""Numpy work on a big image in strips of rows on two threads (numpy releases the GIL in its kernels)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

STRIP_ROWS = 512
THREADS = 2


def in_strips(rows: int, work: Callable[[slice], None]) -> None:
    """Call `work` on every strip of `rows`: one call for a small image, else on a pool of THREADS."""
    strips = [slice(row, row + STRIP_ROWS) for row in range(0, rows, STRIP_ROWS)]
    if len(strips) == 1:
        work(strips[0])
        return
    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(work, strips))
