"""Deterministic, resumable batch order, sharded across ranks without changing the global batches.

A permutation of [0, n) per epoch is computed index by index (a keyed Feistel network with cycle
walking), never stored: batch i of epoch e is a pure function of (n, seed, e, i). Pure integer
arithmetic, so the order is the same on every machine and every torch version (a run started on one
machine resumes exactly on another). A cursor's state is one number, the batches already taken.

Ranks split each global batch into contiguous shards (rank 0 first), so the concatenation of the
shards is the global batch whatever the world size: 1 process and 2 processes see the same batches,
and a checkpoint taken with one world size resumes under another."""
from __future__ import annotations

from collections.abc import Sequence

M64 = (1 << 64) - 1
ROUNDS = 6


def mix64(x: int) -> int:
    """SplitMix64's finaliser: a well-spread 64-bit hash of a 64-bit integer."""
    x = (x + 0x9E3779B97F4A7C15) & M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
    return x ^ (x >> 31)


def key(*parts: int) -> int:
    """One 64-bit key from several integers (seed, epoch, source, ...)."""
    h = 0x5EED
    for part in parts:
        h = mix64(h ^ (part & M64))
    return h


class Permutation:
    """A pseudo-random bijection of [0, n) determined by `seed`, evaluated one index at a time."""

    def __init__(self, n: int, seed: int):
        if n <= 0:
            raise ValueError(f"cannot permute {n} items")
        self.n = n
        self.half = max(1, ((n - 1).bit_length() + 1) // 2)  # a 2*half-bit block holds every index
        self.mask = (1 << self.half) - 1
        self.round_keys = [key(seed, r) for r in range(ROUNDS)]

    def __getitem__(self, i: int) -> int:
        if not 0 <= i < self.n:
            raise IndexError(i)
        x = self._feistel(i)
        while x >= self.n:  # cycle walking; the block holds under 4n values, so few steps
            x = self._feistel(x)
        return x

    def _feistel(self, x: int) -> int:
        left, right = x >> self.half, x & self.mask
        for k in self.round_keys:
            left, right = right, left ^ (mix64(right ^ k) & self.mask)
        return (left << self.half) | right


def shard(batch: Sequence[int], rank: int, world_size: int) -> list[int]:
    """Rank `rank`'s contiguous part of a global batch; sizes differ by at most one."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} outside a world of {world_size}")
    n = len(batch)
    return list(batch[n * rank // world_size:n * (rank + 1) // world_size])


class BatchCursor:
    """Batches over an epoch order (`_order(epoch)` maps positions to items), with resumable state."""

    def __init__(self, n: int, seed: int, batch_size: int, rank: int, world_size: int, drop_last: bool):
        if batch_size <= 0:
            raise ValueError(f"batch size must be positive, got {batch_size}")
        if drop_last and batch_size > n:
            raise ValueError(f"drop_last with a batch of {batch_size} leaves no batch of {n} items")
        shard([], rank, world_size)  # validates rank and world size
        self.n, self.seed, self.batch_size, self.drop_last = n, seed, batch_size, drop_last
        self.rank, self.world_size = rank, world_size
        self.step = 0  # global batches taken so far, on every rank alike
        self._orders: dict[int, object] = {}

    @property
    def batches_per_epoch(self) -> int:
        return self.n // self.batch_size if self.drop_last else -(-self.n // self.batch_size)

    def global_batch(self, epoch: int, i: int) -> list[int]:
        """The i-th batch of epoch `epoch`, all ranks' items (the last one is short unless dropped)."""
        if not 0 <= i < self.batches_per_epoch:
            raise IndexError(f"epoch has {self.batches_per_epoch} batches, asked for batch {i}")
        order = self._order(epoch)
        start = i * self.batch_size
        return [order[p] for p in range(start, min(start + self.batch_size, self.n))]

    def batch(self, epoch: int, i: int) -> list[int]:
        """This rank's shard of `global_batch(epoch, i)`."""
        return shard(self.global_batch(epoch, i), self.rank, self.world_size)

    def position(self, step: int) -> tuple[int, int]:
        """(epoch, batch index in the epoch) of the step-th batch."""
        return divmod(step, self.batches_per_epoch)

    @property
    def epoch(self) -> int:
        """The epoch the next batch belongs to."""
        return self.position(self.step)[0]

    def next_batch(self) -> list[int]:
        """This rank's shard of the next global batch; every rank must call it once per step."""
        out = self.batch(*self.position(self.step))
        self.step += 1
        return out

    def state_dict(self) -> dict:
        return {"step": self.step, **self._identity()}

    def load_state_dict(self, state: dict) -> None:
        """Resume at exactly the next batch; refuses a state from another dataset, seed or batch size
        (rank and world size may differ: the global batches do not depend on them)."""
        mismatched = {k: (state.get(k), v) for k, v in self._identity().items() if state.get(k) != v}
        if mismatched:
            saved = ", ".join(f"{k} {old} -> {new}" for k, (old, new) in mismatched.items())
            raise ValueError(f"cannot resume the data order: {saved}")
        self.step = int(state["step"])

    def _identity(self) -> dict:
        return {"n": self.n, "seed": self.seed, "batch_size": self.batch_size, "drop_last": self.drop_last}

    def _order(self, epoch: int):
        if epoch not in self._orders:
            self._orders = {epoch: self._make_order(epoch)}  # one epoch at a time is all a run needs
        return self._orders[epoch]

    def _make_order(self, epoch: int):
        raise NotImplementedError


class ShuffledCursor(BatchCursor):
    """Every item once per epoch, in a fresh uniform shuffle each epoch."""

    def __init__(self, n: int, seed: int, batch_size: int = 1, *, rank: int = 0, world_size: int = 1,
                 drop_last: bool = False):
        super().__init__(n, seed, batch_size, rank, world_size, drop_last)
        Permutation(n, seed)  # validates n

    def _make_order(self, epoch: int) -> Permutation:
        return Permutation(self.n, key(self.seed, epoch))
