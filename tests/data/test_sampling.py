"""Deterministic, resumable, rank-sharded batch order."""
from __future__ import annotations

import json

import pytest
from hypothesis import given, settings, strategies as st

from runtime.data import Permutation, ShuffledCursor, shard


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 700), seed=st.integers(0, 2**63))
def test_a_permutation_is_a_bijection(n, seed):
    perm = Permutation(n, seed)
    assert sorted(perm[i] for i in range(n)) == list(range(n))


def test_permutations_look_shuffled_and_depend_on_the_seed():
    n = 2000
    a, b = [Permutation(n, 1)[i] for i in range(n)], [Permutation(n, 2)[i] for i in range(n)]
    assert a != b
    assert sum(x == i for i, x in enumerate(a)) < 10  # a uniform shuffle has ~1 fixed point
    mean_jump = sum(abs(x - i) for i, x in enumerate(a)) / n
    assert abs(mean_jump - n / 3) < n / 20  # E|X - Y| = n/3 for independent uniforms
    first_half = sum(x < n // 2 for x in a[:n // 2])
    assert abs(first_half - n / 4) < n / 20


def test_the_order_never_changes_between_versions():
    # A resumed run reads its position back and relies on the same order; if this vector changes,
    # old checkpoints would silently see different data. (Pure integer math: no torch, no platform.)
    assert [Permutation(10, 0)[i] for i in range(10)] == GOLDEN_10
    assert ShuffledCursor(1000, 42, 4).global_batch(3, 7) == GOLDEN_BATCH


GOLDEN_10 = [6, 9, 1, 3, 4, 5, 8, 0, 7, 2]
GOLDEN_BATCH = [622, 97, 93, 680]


def test_each_epoch_visits_every_item_once_in_a_new_order():
    cursor = ShuffledCursor(50, seed=3, batch_size=8)
    assert cursor.batches_per_epoch == 7
    epochs = [[i for b in range(7) for i in cursor.global_batch(e, b)] for e in range(3)]
    assert all(sorted(order) == list(range(50)) for order in epochs)
    assert epochs[0] != epochs[1] != epochs[2]
    assert len(cursor.global_batch(0, 6)) == 2  # the short last batch


def test_drop_last_keeps_batches_full():
    cursor = ShuffledCursor(50, seed=3, batch_size=8, drop_last=True)
    assert cursor.batches_per_epoch == 6
    assert [len(cursor.next_batch()) for _ in range(13)] == [8] * 13
    assert cursor.epoch == 2
    with pytest.raises(ValueError, match="leaves no batch"):
        ShuffledCursor(5, 0, 8, drop_last=True)


def test_sequential_batches_equal_random_access():
    cursor = ShuffledCursor(30, seed=9, batch_size=4)
    taken = [cursor.next_batch() for _ in range(20)]
    assert taken == [cursor.global_batch(*divmod(s, 8)) for s in range(20)]
    assert taken == [ShuffledCursor(30, 9, 4).global_batch(*cursor.position(s)) for s in range(20)]


def test_resume_continues_at_exactly_the_next_batch():
    straight = ShuffledCursor(37, seed=5, batch_size=6)
    expected = [straight.next_batch() for _ in range(25)]
    first = ShuffledCursor(37, seed=5, batch_size=6)
    head = [first.next_batch() for _ in range(11)]
    state = json.loads(json.dumps(first.state_dict()))  # checkpoints store it as JSON
    resumed = ShuffledCursor(37, seed=5, batch_size=6)
    resumed.load_state_dict(state)
    assert head + [resumed.next_batch() for _ in range(14)] == expected


def test_resume_refuses_another_dataset_or_seed():
    state = ShuffledCursor(37, seed=5, batch_size=6).state_dict()
    with pytest.raises(ValueError, match="n 37 -> 40"):
        ShuffledCursor(40, seed=5, batch_size=6).load_state_dict(state)
    with pytest.raises(ValueError, match="seed 5 -> 6"):
        ShuffledCursor(37, seed=6, batch_size=6).load_state_dict(state)


@pytest.mark.parametrize("world_size", [2, 3, 4])
def test_ranks_together_see_the_single_process_batches(world_size):
    # batch 6 over 3 and 4 ranks, and the 47 % 6 = 5 item last batch: uneven shards included
    single = ShuffledCursor(47, seed=11, batch_size=6)
    ranks = [ShuffledCursor(47, seed=11, batch_size=6, rank=r, world_size=world_size) for r in range(world_size)]
    for _ in range(20):
        shards = [c.next_batch() for c in ranks]
        assert [i for s in shards for i in s] == single.next_batch()
        assert max(map(len, shards)) - min(map(len, shards)) <= 1


def test_a_checkpoint_from_two_ranks_resumes_on_one():
    ranks = [ShuffledCursor(40, seed=1, batch_size=8, rank=r, world_size=2) for r in range(2)]
    for _ in range(7):
        for c in ranks:
            c.next_batch()
    assert ranks[0].state_dict() == ranks[1].state_dict()
    alone = ShuffledCursor(40, seed=1, batch_size=8)
    alone.load_state_dict(ranks[0].state_dict())
    reference = ShuffledCursor(40, seed=1, batch_size=8)
    assert alone.next_batch() == reference.global_batch(*reference.position(7))


def test_shard_splits_contiguously():
    assert [shard(list(range(7)), r, 3) for r in range(3)] == [[0, 1], [2, 3], [4, 5, 6]]
    with pytest.raises(ValueError, match="rank 2 outside a world of 2"):
        shard([1, 2], 2, 2)
