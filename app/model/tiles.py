"""Batches padded to whole tiles of rows, so a row's answer does not depend on its neighbours.

BLAS chooses its kernels by a matrix's shape: the rows that fill whole tiles of the matrix product
go through one kernel, the rows left over through another that sums in a different order. The
same row could then get answers that differ in the last bits depending on how many rows came with
it: alone in a request, in a batch, or in a file scored by manage.py score, which promises the
API's answer to the bit. Every batch is therefore padded to a multiple of ``ROW_TILE`` rows (with
copies of its first row) before it is predicted, and every chunk a backend splits a batch into is
a multiple of ``ROW_TILE`` too; tests/test_compiled.py checks that each model family answers a
row alone exactly as it answers it inside batches of other sizes.
"""
from __future__ import annotations

import numpy as np

ROW_TILE = 16  # a multiple of the row tiles of OpenBLAS's double-precision kernels (4, 8 or 16 rows)


def pad_rows(matrix: np.ndarray) -> np.ndarray:
    """``matrix`` with copies of its first row appended up to a multiple of ROW_TILE rows."""
    missing = -len(matrix) % ROW_TILE
    if not missing:
        return matrix
    return np.concatenate([matrix, np.repeat(matrix[:1], missing, axis=0)])


def whole_tiles(rows: int) -> int:
    """A chunk size of about ``rows`` rows, in whole tiles."""
    return max(ROW_TILE, rows - rows % ROW_TILE)
