"""Each health alarm raised by a crafted metric stream, and kept quiet by a healthy one."""
from __future__ import annotations

import math

from vpolang import health


def stream(n: int, **series) -> list[dict]:
    """n records; each keyword is a function of the step index (or None for no value at that step)."""
    out = []
    for i in range(n):
        rec = {"step": i + 1, "time": 1000.0 + i}
        for key, f in series.items():
            value = f(i)
            if value is not None:
                rec[key] = value
        out.append(rec)
    return out


def codes(records, config=None) -> list[str]:
    return [a.code for a in health.alarms(records, config)]


HEALTHY = dict(loss=lambda i: 1.0 / (1 + i), reward_mean=lambda i: 0.1 + 0.01 * i, kl=lambda i: 0.001 * (1 + 0.05 * i),
               grad_norm=lambda i: 1.0 + 0.1 * math.sin(i), clip_frac=lambda i: 0.02, clip_frac_first=lambda i: 0.0,
               zero_std_groups=lambda i: 0.1)


def test_a_healthy_stream_raises_nothing():
    assert codes(stream(40, **HEALTHY), {"updates_per_batch": 2}) == []


def test_non_finite_names_the_metric_and_step():
    records = stream(10, loss=lambda i: 0.5, grad_norm=lambda i: math.inf if i == 6 else 1.0)
    (alarm,) = health.alarms(records)
    assert (alarm.code, alarm.step, alarm.severity) == ("non_finite", 7, "error")
    assert "`grad_norm`" in alarm.message


def test_kl_rising_while_reward_falls():
    # the quickstart's collapse: alignment 0.026 -> 0.003 while KL climbs
    records = stream(28, reward_mean=lambda i: 0.026 - 0.00085 * i, kl=lambda i: 0.001 * (1 + i))
    assert codes(records) == ["kl_without_reward"]
    assert codes(stream(28, reward_mean=lambda i: 0.026 + 0.002 * i, kl=lambda i: 0.001 * (1 + i))) == []


def test_reward_hacking_train_up_validation_down():
    records = stream(40, reward_mean=lambda i: 0.1 + 0.01 * i,
                     **{"val/alignment": lambda i: 0.5 - 0.01 * i if i % 10 == 9 else None})
    assert codes(records) == ["reward_hacking"]
    rising = stream(40, reward_mean=lambda i: 0.1 + 0.01 * i,
                    **{"val/alignment": lambda i: 0.5 + 0.01 * i if i % 10 == 9 else None})
    assert codes(rising) == []


def test_zero_variance_groups():
    assert codes(stream(12, zero_std_groups=lambda i: 0.8)) == ["zero_variance_groups"]
    assert codes(stream(12, zero_std_groups=lambda i: 0.2)) == []


def test_off_policy_first_inner_update_clipped():
    records = stream(5, clip_frac_first=lambda i: 0.3 if i == 2 else 0.0)
    (alarm,) = health.alarms(records)
    assert (alarm.code, alarm.step) == ("off_policy", 3)


def test_clip_fraction_stuck_only_with_several_updates():
    records = stream(12, clip_frac=lambda i: 0.0)
    assert codes(records, {"updates_per_batch": 4}) == ["clip_stuck"]
    assert codes(records, {"updates_per_batch": 1}) == []  # ratio 1 by construction


def test_grad_norm_explosion():
    records = stream(20, grad_norm=lambda i: 500.0 if i == 15 else 1.0 + 0.01 * i)
    (alarm,) = health.alarms(records)
    assert (alarm.code, alarm.step) == ("grad_norm_explosion", 16)


def test_dpo_margin_that_never_leaves_zero():
    assert codes(stream(10, margin=lambda i: 0.0)) == ["dpo_margin_flat"]
    assert codes(stream(10, margin=lambda i: 0.01 * i)) == []


def test_a_resumed_stream_counts_each_step_once():
    # steps 1-7 logged, checkpoint at 5, resumed: 6 and 7 logged again with the values that went on
    first = stream(7, loss=lambda i: 1.0, grad_norm=lambda i: math.nan if i == 6 else 1.0)
    resumed = [dict(r, grad_norm=1.0) for r in stream(10, loss=lambda i: 1.0)[5:]]
    assert [r["step"] for r in health.deduplicated(first + resumed)] == list(range(1, 11))
    assert codes(first + resumed) == []
