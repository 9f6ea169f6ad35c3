"""Multifactor priority and classic fair share: exact numbers for every factor."""

from __future__ import annotations

import json

import pytest

from gsched.controller.priority import (
    DAY,
    MAX_PRIORITY,
    Account,
    ClusterView,
    Factors,
    JobView,
    PriorityConfig,
    ShareTree,
    UsageLedger,
    Weights,
    factors,
    rank,
    tres_seconds,
)

HOUR = 3600.0
ONLY = {"gpu": 1.0}  # usage = GPU-seconds: keeps the arithmetic exact
CLUSTER = ClusterView(total_nodes=10, total_cpus=160, total_gpus=40, max_partition_factor=4,
                      max_qos_priority=100)


def cfg(**weights: int) -> PriorityConfig:
    w = {"age": 0, "fairshare": 0, "jobsize": 0, "partition": 0, "qos": 0, **weights}
    return PriorityConfig(weights=Weights(**w), tres_weights=ONLY)


def two_accounts() -> ShareTree:
    return ShareTree((Account("a", 1, {"a1": 1, "a2": 1}), Account("b", 1, {"b1": 1})))


# ------------------------------------------------------------------ ledger
def test_decay_after_one_half_life_halves_usage() -> None:
    led = UsageLedger(PriorityConfig(tres_weights=ONLY))
    led.charge("u", "acct", {"gpu": 1000.0}, now=0.0)
    led.decay(7 * DAY)
    assert led.usage("u") == pytest.approx(500.0, rel=1e-12)
    led.decay(21 * DAY)
    assert led.usage("u") == pytest.approx(125.0, rel=1e-12)
    assert led.last_decay == 21 * DAY


def test_decay_half_life_is_configurable_and_zero_disables() -> None:
    led = UsageLedger(PriorityConfig(tres_weights=ONLY, decay_half_life=HOUR))
    led.charge("u", "x", {"gpu": 64.0}, now=0.0)
    led.decay(3 * HOUR)
    assert led.usage("u") == 8.0
    flat = UsageLedger(PriorityConfig(tres_weights=ONLY, decay_half_life=0))
    flat.charge("u", "x", {"gpu": 64.0}, now=0.0)
    flat.decay(100 * DAY)
    assert flat.usage("u") == 64.0


def test_charge_decays_existing_usage_first() -> None:
    led = UsageLedger(PriorityConfig(tres_weights=ONLY))
    led.charge("u", "x", {"gpu": 100.0}, now=0.0)
    led.charge("u", "x", {"gpu": 100.0}, now=7 * DAY)
    assert led.usage("u") == pytest.approx(150.0)


def test_decay_going_back_in_time_is_ignored() -> None:
    led = UsageLedger(PriorityConfig(tres_weights=ONLY))
    led.charge("u", "x", {"gpu": 100.0}, now=100.0)
    led.decay(50.0)
    assert led.usage("u") == 100.0
    assert led.last_decay == 100.0


def test_tres_weights_default_gpu_dominant() -> None:
    led = UsageLedger()
    # 1 GPU-hour, 16 CPU-hours and 256 GiB-hours each weigh the same
    assert led.charge("u", "x", tres_seconds(0, 0, 1, HOUR), 0.0) == pytest.approx(HOUR)
    assert led.charge("u", "x", tres_seconds(16, 0, 0, HOUR), 0.0) == pytest.approx(HOUR)
    assert led.charge("u", "x", tres_seconds(0, 256 * 1024, 0, HOUR), 0.0) == pytest.approx(HOUR)
    assert led.usage("u") == pytest.approx(3 * HOUR)
    assert led.tres_usage("u", "x") == pytest.approx(
        {"cpu": 16 * HOUR, "mem": 256 * 1024 * HOUR, "gpu": HOUR}
    )


def test_custom_tres_weights_and_usage_factor() -> None:
    led = UsageLedger(PriorityConfig(tres_weights={"gpu": 2.0, "cpu": 0.5}))
    added = led.charge("u", "x", {"gpu": 10.0, "cpu": 4.0, "mem": 1e9}, 0.0, usage_factor=0.5)
    assert added == 0.5 * (2.0 * 10 + 0.5 * 4)
    assert led.usage("u") == 11.0


def test_tres_seconds() -> None:
    assert tres_seconds(8, 1000, 2, 10.0) == {"cpu": 80.0, "mem": 10000.0, "gpu": 20.0}
    assert tres_seconds(8, 1000, 2, -5.0) == {"cpu": 0.0, "mem": 0.0, "gpu": 0.0}


def test_usage_per_user_and_account() -> None:
    led = UsageLedger(PriorityConfig(tres_weights=ONLY))
    led.charge("u", "x", {"gpu": 1.0}, 0.0)
    led.charge("u", "y", {"gpu": 2.0}, 0.0)
    led.charge("v", "y", {"gpu": 4.0}, 0.0)
    assert led.usage("u") == 3.0
    assert led.usage("u", "y") == 2.0
    assert led.account_usage("y") == 6.0
    assert led.usage("nobody") == 0.0


def test_empty_account_is_the_default_account() -> None:
    led = UsageLedger(PriorityConfig(tres_weights=ONLY), ShareTree(default_account="lab"))
    led.charge("u", "", {"gpu": 5.0}, 0.0)
    assert led.usage("u", "lab") == 5.0
    assert led.account_usage("") == 5.0


def test_ledger_roundtrips_through_json() -> None:
    led = UsageLedger(PriorityConfig(tres_weights=ONLY), two_accounts())
    led.charge("a1", "a", {"gpu": 10.0, "cpu": 3.0}, 100.0)
    led.charge("b1", "b", {"gpu": 2.5}, 100.0)
    raw = json.loads(json.dumps(led.to_dict()))
    back = UsageLedger.from_dict(raw, led.cfg, led.shares)
    assert back.to_dict() == led.to_dict()
    assert back.last_decay == 100.0
    assert back.usage("a1") == 10.0
    assert back.tres_usage("a1", "a") == {"gpu": 10.0, "cpu": 3.0}
    assert back.fairshare_table() == led.fairshare_table()


def test_fresh_ledger_dict() -> None:
    led = UsageLedger()
    assert led.to_dict() == {"version": 1, "last_decay": None, "assocs": []}
    assert UsageLedger.from_dict(led.to_dict()).last_decay is None


def test_reset_forgets_usage() -> None:
    led = UsageLedger(PriorityConfig(tres_weights=ONLY))
    led.charge("u", "x", {"gpu": 5.0}, 0.0)
    led.reset()
    assert led.usage("u") == 0.0


# ------------------------------------------------------------------ fair share
def test_fairshare_of_unused_user_is_one() -> None:
    led = UsageLedger(PriorityConfig(tres_weights=ONLY), two_accounts())
    assert led.fairshare("a1", "a") == 1.0  # nobody used anything
    led.charge("a1", "a", {"gpu": 100.0}, 0.0)
    assert led.fairshare("b1", "b") == 1.0  # b's account is unused


def test_fairshare_classic_formula_exact() -> None:
    # a (1 share: a1, a2 one each), b (1 share: b1). Only a1 used anything.
    led = UsageLedger(PriorityConfig(tres_weights=ONLY), two_accounts())
    led.charge("a1", "a", {"gpu": 100.0}, 0.0)
    table = led.fairshare_table()
    # a1: S = 0.5*0.5, U_E = 1 + (1 - 1)*0.5 = 1      -> 2^-4
    assert table[("a", "a1")] == 0.0625
    # a2: S = 0.25,    U_E = 0 + (1 - 0)*0.5 = 0.5    -> 2^-2 (pays for its account)
    assert table[("a", "a2")] == 0.25
    assert table[("b", "b1")] == 1.0


def test_fairshare_share_ratio_matters() -> None:
    tree = ShareTree((Account("big", 3, {"x": 1}), Account("small", 1, {"y": 1})))
    led = UsageLedger(PriorityConfig(tres_weights=ONLY), tree)
    led.charge("x", "big", {"gpu": 50.0}, 0.0)
    led.charge("y", "small", {"gpu": 50.0}, 0.0)
    # big: S = 0.75, U = 0.5 -> 2^(-2/3); small: S = 0.25, U = 0.5 -> 2^-2
    assert led.fairshare("x", "big") == pytest.approx(2 ** (-2 / 3))
    assert led.fairshare("y", "small") == 0.25


def test_fairshare_unconfigured_users_get_default_shares() -> None:
    led = UsageLedger(PriorityConfig(tres_weights=ONLY))
    led.charge("u", "lab", {"gpu": 30.0}, 0.0)
    led.charge("v", "lab", {"gpu": 10.0}, 0.0)
    # one account (S=1), two users with one share each: S = 0.5
    # u: U_E = 0.75 + (1 - 0.75)*0.5 = 0.875 -> 2^-1.75; v: 0.25 + 0.75*0.5 = 0.625 -> 2^-1.25
    assert led.fairshare("u", "lab") == pytest.approx(2 ** -1.75)
    assert led.fairshare("v", "lab") == pytest.approx(2 ** -1.25)


def test_fairshare_independent_of_uniform_decay() -> None:
    led = UsageLedger(PriorityConfig(tres_weights=ONLY), two_accounts())
    led.charge("a1", "a", {"gpu": 30.0}, 0.0)
    led.charge("b1", "b", {"gpu": 10.0}, 0.0)
    before = led.fairshare_table()
    led.decay(3 * DAY)
    assert led.fairshare_table() == pytest.approx(before)


def test_decay_lets_old_usage_fade_against_new() -> None:
    led = UsageLedger(PriorityConfig(tres_weights=ONLY), two_accounts())
    led.charge("a1", "a", {"gpu": 100.0}, 0.0)
    led.charge("b1", "b", {"gpu": 50.0}, 7 * DAY)  # a1's 100 is worth 50 by now
    # a: U = 0.5, S = 0.5 -> a1: U_E = 0.5 + (0.5-0.5)*0.5 = 0.5, S = 0.25 -> 2^-2
    assert led.fairshare("a1", "a") == pytest.approx(0.25)
    # b: U = 0.5, b1 alone: U_E = 0.5, S = 0.5 -> 2^-1
    assert led.fairshare("b1", "b") == pytest.approx(0.5)


def test_zero_shares_means_zero_fairshare() -> None:
    tree = ShareTree((Account("a", 0, {"u": 1}), Account("b", 1, {})))
    led = UsageLedger(PriorityConfig(tres_weights=ONLY), tree)
    assert led.fairshare("u", "a") == 0.0


def test_report_rows_like_sshare() -> None:
    led = UsageLedger(PriorityConfig(tres_weights=ONLY), two_accounts())
    led.charge("a1", "a", {"gpu": 100.0}, 0.0)
    rows = {(r.account, r.user): r for r in led.report()}
    assert list(rows) == [("a", ""), ("a", "a1"), ("a", "a2"), ("b", ""), ("b", "b1")]
    a = rows[("a", "")]
    assert (a.raw_shares, a.norm_shares, a.raw_usage, a.norm_usage, a.effective_usage) == (
        1, 0.5, 100.0, 1.0, 1.0)
    assert a.fairshare == 0.25
    a2 = rows[("a", "a2")]
    assert (a2.norm_shares, a2.raw_usage, a2.effective_usage, a2.fairshare) == (
        0.25, 0.0, 0.5, 0.25)


def test_extra_associations_join_the_tree() -> None:
    led = UsageLedger(PriorityConfig(tres_weights=ONLY))
    led.charge("u", "lab", {"gpu": 10.0}, 0.0)
    # a newcomer in lab shares the account: u's shares halve
    assert led.fairshare("u", "lab") == 0.5  # alone: U_E 1, S 1 -> 2^-1
    table = led.fairshare_table([("lab", "new")])
    assert table[("lab", "u")] == 0.25  # U_E 1, S 0.5 -> 2^-2
    assert table[("lab", "new")] == 0.5  # U_E 0 + (1 - 0)*0.5, S 0.5 -> 2^-1


# ------------------------------------------------------------------ factors
def view(**kw: object) -> JobView:
    base: dict[str, object] = {"job_id": 1, "user": "u", "account": "x"}
    base.update(kw)
    return JobView(**base)  # type: ignore[arg-type]


def test_age_factor() -> None:
    c = PriorityConfig(max_age=10 * DAY, tres_weights=ONLY)
    led = UsageLedger(c)
    f = factors(view(submit_time=0.0), CLUSTER, led, c, now=DAY)
    assert f.age == 0.1
    assert factors(view(submit_time=0.0), CLUSTER, led, c, now=30 * DAY).age == 1.0
    # counted from eligibility (--begin / requeue delay), never negative
    assert factors(view(submit_time=0.0, eligible_time=5 * DAY), CLUSTER, led, c,
                   now=6 * DAY).age == 0.1
    assert factors(view(submit_time=0.0, eligible_time=5 * DAY), CLUSTER, led, c,
                   now=DAY).age == 0.0
    assert factors(view(), CLUSTER, led, PriorityConfig(max_age=0), now=DAY).age == 0.0


def test_jobsize_factor_largest_tres_share() -> None:
    c = cfg()
    led = UsageLedger(c)
    assert factors(view(nodes=1, cpus=1, gpus=0), CLUSTER, led, c, 0).jobsize == 0.1
    assert factors(view(nodes=1, cpus=80, gpus=0), CLUSTER, led, c, 0).jobsize == 0.5
    assert factors(view(nodes=2, cpus=2, gpus=30), CLUSTER, led, c, 0).jobsize == 0.75
    assert factors(view(nodes=20, cpus=2, gpus=0), CLUSTER, led, c, 0).jobsize == 1.0
    assert factors(view(), ClusterView(), led, c, 0).jobsize == 0.0


def test_jobsize_favor_small_flips() -> None:
    c = PriorityConfig(favor_small=True)
    led = UsageLedger(c)
    assert factors(view(nodes=1, cpus=1, gpus=0), CLUSTER, led, c, 0).jobsize == 0.9
    assert factors(view(nodes=10, cpus=1, gpus=0), CLUSTER, led, c, 0).jobsize == 0.0


def test_partition_and_qos_factors() -> None:
    c = cfg()
    led = UsageLedger(c)
    f = factors(view(partition_factor=1, qos_priority=50), CLUSTER, led, c, 0)
    assert (f.partition, f.qos) == (0.25, 0.5)
    f = factors(view(partition_factor=4, qos_priority=100), CLUSTER, led, c, 0)
    assert (f.partition, f.qos) == (1.0, 1.0)
    f = factors(view(partition_factor=4, qos_priority=100), ClusterView(max_partition_factor=0),
                led, c, 0)
    assert (f.partition, f.qos) == (0.0, 0.0)


def test_weights_combine_exactly() -> None:
    c = PriorityConfig(
        weights=Weights(age=1000, fairshare=10000, jobsize=400, partition=2000, qos=3000),
        max_age=10 * DAY, tres_weights=ONLY,
    )
    led = UsageLedger(c, two_accounts())
    led.charge("a1", "a", {"gpu": 100.0}, 0.0)
    j = view(user="a2", account="a", submit_time=0.0, nodes=1, cpus=8, gpus=20,
             partition_factor=2, qos_priority=25)
    f = factors(j, CLUSTER, led, c, now=5 * DAY)
    # age 0.5, fs 0.25 (see the classic test), size 0.5, part 0.5, qos 0.25
    assert f == Factors(0.5, 0.25, 0.5, 0.5, 0.25, 0, 500 + 2500 + 200 + 1000 + 750)
    assert f.weighted(c) == {"age": 500.0, "fairshare": 2500.0, "jobsize": 200.0,
                             "partition": 1000.0, "qos": 750.0, "nice": -0.0}


def test_nice_subtracts() -> None:
    c = cfg(fairshare=10000)
    led = UsageLedger(c)
    assert factors(view(), CLUSTER, led, c, 0).total == 10000
    f = factors(view(nice=250), CLUSTER, led, c, 0)
    assert (f.nice, f.total) == (250, 9750)
    assert factors(view(nice=-100), CLUSTER, led, c, 0).total == 10100
    assert factors(view(nice=99999), CLUSTER, led, c, 0).total == 1  # never 0: 0 means held
    assert f.weighted(c)["nice"] == -250.0


def test_total_truncates_and_clamps() -> None:
    c = PriorityConfig(weights=Weights(age=3, fairshare=0, jobsize=0, partition=0, qos=0),
                       max_age=3.0)
    led = UsageLedger(c)
    assert factors(view(), CLUSTER, led, c, now=1.0).total == 1  # 3 * 1/3 = 0.999.. -> 1
    assert factors(view(), CLUSTER, led, c, now=2.9).total == 2
    huge = PriorityConfig(weights=Weights(age=0, fairshare=2**40, jobsize=0, partition=0, qos=0))
    assert factors(view(), CLUSTER, led, huge, 0).total == MAX_PRIORITY


def test_zero_weights_give_priority_one() -> None:
    c = cfg()
    assert factors(view(), CLUSTER, UsageLedger(c), c, 0).total == 1


def test_hold_and_admin_priority() -> None:
    c = cfg(fairshare=10000)
    led = UsageLedger(c)
    assert factors(view(hold=True), CLUSTER, led, c, 0).total == 0
    assert factors(view(admin_priority=42, nice=10), CLUSTER, led, c, 0).total == 42
    assert factors(view(admin_priority=42, hold=True), CLUSTER, led, c, 0).total == 0


def test_fairshare_factor_feeds_priority() -> None:
    c = cfg(fairshare=10000)
    led = UsageLedger(c, two_accounts())
    led.charge("a1", "a", {"gpu": 100.0}, 0.0)
    assert factors(view(user="a1", account="a"), CLUSTER, led, c, 0).total == 625
    assert factors(view(user="a2", account="a"), CLUSTER, led, c, 0).total == 2500
    assert factors(view(user="b1", account="b"), CLUSTER, led, c, 0).total == 10000


# ------------------------------------------------------------------ rank
def test_rank_orders_by_priority_then_submit_then_id() -> None:
    c = cfg(fairshare=10000)
    led = UsageLedger(c, two_accounts())
    led.charge("a1", "a", {"gpu": 100.0}, 0.0)
    jobs = [
        view(job_id=5, user="a1", account="a", submit_time=1.0),  # 625
        view(job_id=4, user="b1", account="b", submit_time=3.0),  # 10000
        view(job_id=3, user="b1", account="b", submit_time=2.0),  # 10000, earlier
        view(job_id=2, user="b1", account="b", submit_time=2.0),  # 10000, same time, lower id
        view(job_id=1, user="a2", account="a", submit_time=9.0),  # 2500
        view(job_id=6, user="b1", account="b", hold=True),  # 0
    ]
    order = rank(jobs, CLUSTER, led, c, now=10.0)
    assert [j for j, _ in order] == [2, 3, 4, 1, 5, 6]
    assert [f.total for _, f in order] == [10000, 10000, 10000, 2500, 625, 0]


def test_rank_priority_tier_first() -> None:
    c = cfg(fairshare=10000)
    led = UsageLedger(c)
    jobs = [view(job_id=1, nice=5000), view(job_id=2, priority_tier=1, nice=9000)]
    assert [j for j, _ in rank(jobs, CLUSTER, led, c, 0)] == [2, 1]


def test_rank_uses_one_tree_for_all_pending_users() -> None:
    c = cfg(fairshare=10000)
    led = UsageLedger(c)
    led.charge("u", "lab", {"gpu": 10.0}, 0.0)
    order = dict(rank([view(job_id=1, user="u", account="lab"),
                       view(job_id=2, user="new", account="lab")], CLUSTER, led, c, 0))
    assert order[1].fairshare == 0.25
    assert order[2].fairshare == 0.5


def test_rank_ten_thousand_jobs() -> None:
    c = PriorityConfig()
    led = UsageLedger(c)
    for u in range(20):
        led.charge(f"u{u}", f"acct{u % 4}", tres_seconds(8, 0, 1, HOUR * (u + 1)), 0.0)
    jobs = [view(job_id=i, user=f"u{i % 25}", account=f"acct{i % 5}", submit_time=float(i % 97),
                 gpus=i % 9) for i in range(10_000)]
    order = rank(jobs, CLUSTER, led, c, now=DAY)
    assert len(order) == 10_000
    submit = {j.job_id: j.submit_time for j in jobs}
    keys = [(-f.total, submit[j], j) for j, f in order]
    assert keys == sorted(keys)
    assert len({f.total for _, f in order}) > 5
