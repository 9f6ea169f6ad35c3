"""Scheduling policy ↔ protobuf (the servicers' side; the core never sees protos)."""

from __future__ import annotations

from gsched.controller.cluster import Cluster
from gsched.controller.jobs import Job
from gsched.controller.policy import Policy, format_tres
from gsched.controller.scheduler import Partition
from gsched.protos import gsched_pb2 as pb

__all__ = ["fill_factors", "job_priorities", "limit_text", "partition_extra", "policy_reply", "share_rows"]

# the limit a pending reason stands for, as (entity, attribute) for the text
_LIMIT_OF = {
    "QOSMaxGRESPerUser": ("qos", "MaxTRESPerUser"),
    "QOSMaxCpuPerUserLimit": ("qos", "MaxTRESPerUser"),
    "QOSMaxJobsPerUserLimit": ("qos", "MaxJobsPerUser"),
    "QOSMaxWallDurationPerJobLimit": ("qos", "MaxWall"),
    "QOSGrpGRES": ("qos", "GrpTRES"),
    "QOSGrpCpuLimit": ("qos", "GrpTRES"),
    "AssocGrpGRES": ("account", "GrpTRES"),
    "AssocGrpCpuLimit": ("account", "GrpTRES"),
}


def limit_text(job: Job, policy: Policy) -> str:
    """Which configured limit holds a pending job, e.g. ``QOS=high MaxTRESPerUser=...``."""
    hit = _LIMIT_OF.get(job.reason)
    if hit is None:
        return ""
    entity, attr = hit
    if entity == "account":
        a = policy.accounts.get(job.account)
        return f"Account={job.account} GrpTRES={format_tres(a.grp_tres)}" if a else ""
    q = policy.qos.get(job.qos)
    if q is None:
        return ""
    value = {
        "MaxTRESPerUser": format_tres(q.max_tres_per_user),
        "MaxJobsPerUser": str(q.max_jobs_per_user),
        "MaxWall": str(q.max_wall),
        "GrpTRES": format_tres(q.grp_tres),
    }[attr]
    return f"QOS={job.qos} {attr}={value}"


def fill_factors(out: pb.JobPriority, cluster: Cluster, job: Job, now: float) -> None:
    """One job's weighted and normalised factors (gprio's row, gctl show job's line)."""
    f = cluster.factors_of(job, now)
    wf = f.weighted(cluster.prio.cfg)
    out.job_id, out.partition, out.user = job.job_id, job.partition, job.user
    out.account, out.qos, out.priority = job.account, job.qos, job.priority
    out.age, out.fairshare, out.jobsize = wf["age"], wf["fairshare"], wf["jobsize"]
    out.partition_factor, out.qos_factor, out.nice = wf["partition"], wf["qos"], job.nice
    out.tier, out.admin_set = job.tier, bool(job.admin_priority)
    out.age_norm, out.fairshare_norm, out.jobsize_norm = f.age, f.fairshare, f.jobsize
    out.partition_norm, out.qos_norm = f.partition, f.qos


def partition_extra(info: pb.PartitionInfo, p: Partition) -> None:
    info.priority_tier = p.priority_tier
    info.priority_job_factor = p.priority_job_factor
    info.allow_accounts.extend(p.allow_accounts)
    info.allow_groups.extend(p.allow_groups)
    info.exclusive = p.exclusive


def job_priorities(cluster: Cluster, job_ids: list[int], users: list[str],
                   now: float) -> pb.PrioritiesReply:
    """``gprio``: every pending (unheld) job's weighted factors."""
    w = cluster.prio.cfg.weights
    reply = pb.PrioritiesReply(weights=pb.PriorityWeights(
        age=w.age, fairshare=w.fairshare, jobsize=w.jobsize, partition=w.partition, qos=w.qos))
    wanted_ids, wanted_users = set(job_ids), set(users)
    for job in cluster.pending_order():
        if wanted_ids and job.job_id not in wanted_ids:
            continue
        if wanted_users and job.user not in wanted_users and str(job.uid) not in wanted_users:
            continue
        fill_factors(reply.jobs.add(), cluster, job, now)
    return reply


def share_rows(cluster: Cluster, users: list[str], accounts: list[str]) -> pb.SharesReply:
    """``gshare``: the share tree with usage (accounts, then their users)."""
    led = cluster.prio.ledger
    extra = {(led.shares.account_of(j.account), j.user) for j in cluster.jobs.values()
             if not j.is_final}
    reply = pb.SharesReply()
    for r in led.report(extra):
        if accounts and r.account not in accounts:
            continue
        if users and r.user and r.user not in users:
            continue
        reply.rows.add(account=r.account, user=r.user, raw_shares=r.raw_shares,
                       norm_shares=r.norm_shares, raw_usage=r.raw_usage,
                       norm_usage=r.norm_usage, effective_usage=r.effective_usage,
                       fairshare=r.fairshare)
    return reply


def policy_reply(policy: Policy) -> pb.PolicyReply:
    reply = pb.PolicyReply(default_qos=policy.default_qos,
                           default_accounts=dict(policy.default_accounts))
    for q in sorted(policy.qos.values(), key=lambda q: q.name):
        reply.qos.add(
            name=q.name, priority=q.priority, max_wall=q.max_wall,
            max_tres_per_user=format_tres(q.max_tres_per_user),
            max_jobs_per_user=q.max_jobs_per_user,
            max_submit_jobs_per_user=q.max_submit_jobs_per_user,
            grp_tres=format_tres(q.grp_tres), preempt=list(q.preempt),
            preempt_mode=q.preempt_mode, grace_time=q.grace_time, usage_factor=q.usage_factor,
        )
    for a in sorted(policy.accounts.values(), key=lambda a: a.name):
        reply.accounts.add(name=a.name, shares=a.shares, users=dict(a.users),
                           grp_tres=format_tres(a.grp_tres))
    return reply
