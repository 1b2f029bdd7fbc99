"""Pair mixtures: batches in proportion to source sizes, deterministic, resumable, sharded."""
from __future__ import annotations

from collections import Counter

import pytest

from runtime.data import MixtureCursor

SIZES = [300, 60, 15]


def counts(cursor, batch):
    found = Counter(cursor.source_of(i)[0] for i in batch)
    return [found[k] for k in range(len(cursor.sizes))]


def test_every_batch_draws_from_each_source_in_proportion():
    cursor = MixtureCursor(SIZES, seed=0, batch_size=16, drop_last=True)
    quota = [16 * s / sum(SIZES) for s in SIZES]  # 12.8, 2.56, 0.64
    for _ in range(3 * cursor.batches_per_epoch):
        got = counts(cursor, cursor.next_batch())
        assert all(abs(g - q) < 2 for g, q in zip(got, quota)), got


def test_every_item_once_per_epoch_and_sources_shuffled_anew():
    cursor = MixtureCursor(SIZES, seed=4, batch_size=16)
    epochs = [[i for b in range(cursor.batches_per_epoch) for i in cursor.global_batch(e, b)] for e in range(2)]
    assert all(sorted(order) == list(range(sum(SIZES))) for order in epochs)
    small = [[i for i in order if cursor.source_of(i)[0] == 2] for order in epochs]
    assert small[0] != small[1]


def test_proportions_follow_sizes_not_source_order():
    for sizes in ([15, 300, 60], [1, 1, 98], [10, 10]):
        cursor = MixtureCursor(sizes, seed=1, batch_size=10, drop_last=True)
        total = [0] * len(sizes)
        for _ in range(cursor.batches_per_epoch):
            total = [t + c for t, c in zip(total, counts(cursor, cursor.next_batch()))]
        assert all(abs(t - s * 10 * cursor.batches_per_epoch / sum(sizes)) <= 2 for t, s in zip(total, sizes))


def test_source_of_maps_back_into_each_source():
    cursor = MixtureCursor([3, 0, 2], seed=0, batch_size=5)
    assert [cursor.source_of(i) for i in range(5)] == [(0, 0), (0, 1), (0, 2), (2, 0), (2, 1)]
    assert sorted(cursor.global_batch(0, 0)) == [0, 1, 2, 3, 4]


def test_deterministic_resumable_and_independent_of_world_size():
    single = MixtureCursor(SIZES, seed=2, batch_size=12)
    expected = [single.next_batch() for _ in range(40)]
    fresh = MixtureCursor(SIZES, seed=2, batch_size=12)
    assert expected == [fresh.global_batch(*single.position(s)) for s in range(40)]
    ranks = [MixtureCursor(SIZES, seed=2, batch_size=12, rank=r, world_size=3) for r in range(3)]
    first = [[i for c in ranks for i in c.next_batch()] for _ in range(15)]
    resumed = MixtureCursor(SIZES, seed=2, batch_size=12, rank=0, world_size=1)
    resumed.load_state_dict(ranks[1].state_dict())
    assert first + [resumed.next_batch() for _ in range(25)] == expected


def test_resume_refuses_changed_sources():
    state = MixtureCursor([10, 5], seed=0, batch_size=4).state_dict()
    with pytest.raises(ValueError, match=r"sizes \[10, 5\] -> \[5, 10\]"):
        MixtureCursor([5, 10], seed=0, batch_size=4).load_state_dict(state)
    with pytest.raises(ValueError, match="needs sources with items"):
        MixtureCursor([0, 0], seed=0, batch_size=4)


def test_the_interleaving_never_changes_between_versions():
    assert MixtureCursor([5, 3], 7, 4).global_batch(1, 1) == [6, 3, 7, 0]
