"""Pair mixtures (`a + b + c`): batches draw from every source in proportion to its size.

Position p of an epoch goes to slot (p * stride + offset) mod n of the sources' concatenation, with the
stride near n / golden ratio and coprime with n. Consecutive positions then spread evenly over the
slots (three-distance theorem): a source holding a fraction f of the items gets f * batch items, give or
take one or two, in every batch, and over an epoch every slot is visited exactly once. Each source is
also shuffled within itself every epoch."""
from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from itertools import accumulate
from math import gcd

from .sampling import BatchCursor, Permutation, key


class MixtureCursor(BatchCursor):
    """Batches of indices into the concatenation of sources of the given sizes (source k's item j is
    index offsets[k] + j); batching, sharding and state as for `ShuffledCursor`."""

    def __init__(self, sizes: Sequence[int], seed: int, batch_size: int = 1, *, rank: int = 0, world_size: int = 1,
                 drop_last: bool = False):
        if not sizes or any(s < 0 for s in sizes) or sum(sizes) == 0:
            raise ValueError(f"a mixture needs sources with items, got sizes {list(sizes)}")
        super().__init__(sum(sizes), seed, batch_size, rank, world_size, drop_last)
        self.sizes = list(sizes)
        self.offsets = [0, *accumulate(self.sizes)]
        self.stride = _golden_stride(self.n)

    def source_of(self, index: int) -> tuple[int, int]:
        """(source, item within the source) of an index into the concatenation."""
        k = bisect_right(self.offsets, index) - 1
        return k, index - self.offsets[k]

    def _identity(self) -> dict:
        return {**super()._identity(), "sizes": self.sizes}

    def _make_order(self, epoch: int) -> _Interleaved:
        return _Interleaved(self, epoch)


class _Interleaved:
    def __init__(self, cursor: MixtureCursor, epoch: int):
        self.cursor, self.offset = cursor, key(cursor.seed, epoch, 1 << 40) % cursor.n
        self.perms = [Permutation(s, key(cursor.seed, epoch, k)) if s else None for k, s in enumerate(cursor.sizes)]

    def __getitem__(self, p: int) -> int:
        c = self.cursor
        slot = (p * c.stride + self.offset) % c.n
        k, j = c.source_of(slot)
        return c.offsets[k] + self.perms[k][j]


def _golden_stride(n: int) -> int:
    """The integer nearest n / golden ratio that is coprime with n (a low-discrepancy step)."""
    if n <= 2:
        return 1
    base = round(n * 0.6180339887498949)
    for delta in range(n):
        for s in (base + delta, base - delta):
            if 0 < s < n and gcd(s, n) == 1:
                return s
    return 1
