"""Durable state: SQLAlchemy Core over SQLite (default, WAL) or PostgreSQL.

The controller writes from one dedicated thread, in batches: every change made on
the event loop is snapshotted into plain rows, and one transaction writes them all
(group commit). Recovery reads everything back into a :class:`Cluster`.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gsched.controller.arrays import TaskSet
from gsched.controller.cluster import Cluster
from gsched.controller.deps import Dependency
from gsched.controller.jobs import Job, JobState, Request
from gsched.controller.nodes import Gpu, Node

__all__ = ["SCHEMA_VERSION", "Store", "job_to_row", "node_to_row"]

logger = logging.getLogger(__name__)
SCHEMA_VERSION = 1

metadata = sa.MetaData()

jobs_t = sa.Table(
    "jobs",
    metadata,
    sa.Column("job_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("user", sa.String(64), nullable=False),
    sa.Column("uid", sa.Integer, nullable=False),
    sa.Column("gid", sa.Integer, nullable=False),
    sa.Column("grp", sa.String(64), nullable=False),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("state", sa.String(16), nullable=False, index=True),
    sa.Column("reason", sa.String(64), nullable=False),
    sa.Column("partition", sa.String(256), nullable=False),
    sa.Column("priority", sa.BigInteger, nullable=False),
    sa.Column("nice", sa.Integer, nullable=False),
    sa.Column("hold", sa.Boolean, nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("submit_time", sa.Float, nullable=False),
    sa.Column("start_time", sa.Float, nullable=False),
    sa.Column("end_time", sa.Float, nullable=False),
    sa.Column("time_limit", sa.BigInteger, nullable=False),
    sa.Column("exit_code", sa.Integer, nullable=False),
    sa.Column("exit_signal", sa.Integer, nullable=False),
    sa.Column("final_state", sa.String(16), nullable=False),
    sa.Column("stdout_path", sa.Text, nullable=False),
    sa.Column("stderr_path", sa.Text, nullable=False),
    sa.Column("comment", sa.Text, nullable=False),
    sa.Column("last_failure", sa.String(64), nullable=False),
    sa.Column("eligible_time", sa.Float, nullable=False),
    sa.Column("exit_requeues", sa.Integer, nullable=False),
    sa.Column("stop", sa.Text, nullable=False),  # JSON: a stop announced with --signal
    sa.Column("attempts", sa.Text, nullable=False),  # JSON list
    sa.Column("request", sa.Text, nullable=False),  # JSON of Request
    sa.Column("alloc", sa.Text, nullable=False),  # JSON, allocation order kept
    sa.Column("pending_nodes", sa.Text, nullable=False),  # JSON list
    sa.Column("spec", sa.LargeBinary, nullable=False),  # serialized gsched.v1.JobSpec
    # JSON: dependency, --begin, array fields (see sched_to_json); "" = none of them
    sa.Column("sched", sa.Text, nullable=False, default=""),
    sa.Column("array_job_id", sa.BigInteger, nullable=False, default=0),  # 0 = not an array
    # scheduling policy
    sa.Column("account", sa.String(64), nullable=False, server_default=""),
    sa.Column("qos", sa.String(64), nullable=False, server_default=""),
    sa.Column("admin_priority", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("preempt_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("preempt_deadline", sa.Float, nullable=False, server_default="0"),
)

nodes_t = sa.Table(
    "nodes",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("cpus", sa.Integer, nullable=False),
    sa.Column("mem_mb", sa.BigInteger, nullable=False),
    sa.Column("gpus", sa.Text, nullable=False),  # JSON list
    sa.Column("ever_registered", sa.Boolean, nullable=False),
    sa.Column("up", sa.Boolean, nullable=False),
    sa.Column("drain", sa.Boolean, nullable=False),
    sa.Column("down_reason", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("reason_time", sa.Float, nullable=False),
    sa.Column("reason_user", sa.String(64), nullable=False),
    sa.Column("info", sa.Text, nullable=False),
    sa.Column("failures", sa.Text, nullable=False),  # JSON list of incidents (controller/health)
)

steps_t = sa.Table(
    "steps",
    metadata,
    sa.Column("job_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("step_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("nodes", sa.Text, nullable=False),  # JSON list
    sa.Column("ntasks", sa.Integer, nullable=False),
    sa.Column("start_time", sa.Float, nullable=False),
    sa.Column("end_time", sa.Float, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("exit_code", sa.Integer, nullable=False),
    sa.Column("exit_signal", sa.Integer, nullable=False),
)

meta_t = sa.Table(
    "meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)


def job_to_row(job: Job) -> dict[str, Any]:
    return {
        "job_id": job.job_id,
        "user": job.user,
        "uid": job.uid,
        "gid": job.gid,
        "grp": job.group,
        "name": job.name,
        "state": str(job.state),
        "reason": job.reason,
        "partition": job.partition,
        "priority": job.priority,
        "nice": job.nice,
        "hold": job.hold,
        "attempt": job.attempt,
        "submit_time": job.submit_time,
        "start_time": job.start_time,
        "end_time": job.end_time,
        "time_limit": job.time_limit,
        "exit_code": job.exit_code,
        "exit_signal": job.exit_signal,
        "final_state": job.final_state,
        "stdout_path": job.stdout_path,
        "stderr_path": job.stderr_path,
        "comment": job.comment,
        "last_failure": job.last_failure,
        "eligible_time": job.eligible_time,
        "exit_requeues": job.exit_requeues,
        "stop": json.dumps(job.stop) if job.stop else "",
        "attempts": json.dumps(job.attempts),
        "request": json.dumps(job.request.to_dict()),
        "alloc": json.dumps(list(job.alloc.items())),
        "pending_nodes": json.dumps(job.pending_nodes),
        "spec": job.spec,
        "sched": sched_to_json(job),
        "array_job_id": job.array_job_id,
        "account": job.account,
        "qos": job.qos,
        "admin_priority": job.admin_priority,
        "preempt_count": job.preempt_count,
        "preempt_deadline": job.preempt_deadline,
    }


def sched_to_json(job: Job) -> str:
    """The dependency, --begin and array fields of ``job`` as one JSON text."""
    out: dict[str, Any] = {}
    if job.dependency is not None:
        out["dep"] = job.dependency.to_dict()
    if job.kill_on_invalid_dep:
        out["kill_dep"] = True
    if job.begin_time:
        out["begin"] = job.begin_time
    if job.array_job_id:
        out["array"] = [job.array_job_id, job.array_task_id, job.array_max_running,
                        list(job.array_size),
                        None if job.array_tasks is None else job.array_tasks.to_json()]
    return json.dumps(out) if out else ""


def sched_from_json(job: Job, text: str) -> None:
    if not text:
        return
    raw = json.loads(text)
    if "dep" in raw:
        job.dependency = Dependency.from_dict(raw["dep"])
    job.kill_on_invalid_dep = bool(raw.get("kill_dep", False))
    job.begin_time = float(raw.get("begin", 0.0))
    if "array" in raw:
        a, t, limit, size, tasks = raw["array"]
        job.array_job_id, job.array_task_id, job.array_max_running = a, t, limit
        job.array_size = tuple(size)  # type: ignore[assignment]
        job.array_tasks = None if tasks is None else TaskSet(tasks)


def row_to_job(row: Any) -> Job:
    m = row._mapping
    job = _row_to_job(m)
    sched_from_json(job, m.get("sched") or "")
    return job


def _row_to_job(m: Any) -> Job:
    return Job(
        job_id=m["job_id"],
        user=m["user"],
        uid=m["uid"],
        gid=m["gid"],
        group=m["grp"],
        name=m["name"],
        request=Request.from_dict(json.loads(m["request"])),
        spec=bytes(m["spec"]),
        submit_time=m["submit_time"],
        state=JobState(m["state"]),
        reason=m["reason"],
        partition=m["partition"],
        priority=m["priority"],
        nice=m["nice"],
        hold=m["hold"],
        attempt=m["attempt"],
        start_time=m["start_time"],
        end_time=m["end_time"],
        time_limit=m["time_limit"],
        exit_code=m["exit_code"],
        exit_signal=m["exit_signal"],
        final_state=m["final_state"],
        stdout_path=m["stdout_path"],
        stderr_path=m["stderr_path"],
        comment=m["comment"],
        last_failure=m["last_failure"],
        eligible_time=m["eligible_time"],
        exit_requeues=m["exit_requeues"],
        stop=json.loads(m["stop"]) if m["stop"] else {},
        attempts=json.loads(m["attempts"]),
        alloc=dict((k, v) for k, v in json.loads(m["alloc"])),
        pending_nodes=list(json.loads(m["pending_nodes"])),
        account=m["account"],
        qos=m["qos"],
        admin_priority=m["admin_priority"],
        preempt_count=m["preempt_count"],
        preempt_deadline=m["preempt_deadline"],
    )


def node_to_row(node: Node) -> dict[str, Any]:
    return {
        "name": node.name,
        "cpus": node.cpus,
        "mem_mb": node.mem_mb,
        "gpus": json.dumps([g.__dict__ for g in node.gpus]),
        "ever_registered": node.ever_registered,
        "up": node.up,
        "drain": node.drain,
        "down_reason": node.down_reason,
        "reason": node.reason,
        "reason_time": node.reason_time,
        "reason_user": node.reason_user,
        "info": json.dumps(node.info),
        "failures": json.dumps(node.failures),
    }


class Store:
    """The database behind the controller. All methods are blocking; call from one thread."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = _engine(url)
        self._lock = threading.Lock()
        metadata.create_all(self.engine)
        self._add_missing_columns()
        # built once: constructing an upsert costs more than executing a small one
        self._upserts = (
            _Upsert(self.engine, jobs_t, "job_id", [c.name for c in jobs_t.columns]),
            _Upsert(self.engine, nodes_t, "name", [c.name for c in nodes_t.columns]),
            _Upsert(self.engine, meta_t, "key", ["key", "value"]),
        )
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(meta_t.c.value).where(meta_t.c.key == "schema")).first()
            if row is None:
                conn.execute(sa.insert(meta_t).values(key="schema", value=str(SCHEMA_VERSION)))
            elif int(row[0]) > SCHEMA_VERSION:
                raise RuntimeError(f"database schema {row[0]} is newer than this gsched")
        # SQLite: one connection kept for the commits (a local file never drops it; a
        # checkout from the pool per commit was a tenth of a small commit's time).
        self._writer: sa.Connection | None = (
            self.engine.connect() if self.engine.dialect.name == "sqlite" else None
        )

    def _add_missing_columns(self) -> None:
        """Bring a database written by an older gsched up to date (columns only grow)."""
        insp = sa.inspect(self.engine)
        for table in metadata.sorted_tables:
            have = {c["name"] for c in insp.get_columns(table.name)}
            for col in table.columns:
                if col.name in have:
                    continue
                kind = col.type.compile(dialect=self.engine.dialect)
                default = "''" if isinstance(col.type, (sa.String, sa.Text)) else "0"
                logger.info("store: adding column %s.%s", table.name, col.name)
                with self.engine.begin() as conn:
                    conn.execute(sa.text(
                        f'ALTER TABLE {table.name} ADD COLUMN "{col.name}" {kind} '
                        f"NOT NULL DEFAULT {default}"
                    ))

    def meta_secret(self, key: str, make: Callable[[], str]) -> str:
        """The meta row ``key``; created with ``make()`` the first time (kept for good)."""
        with self._lock, self.engine.begin() as conn:
            row = conn.execute(sa.select(meta_t.c.value).where(meta_t.c.key == key)).first()
            if row is not None and row[0]:
                return str(row[0])
            value = make()
            self._upserts[2].run(conn, [{"key": key, "value": value}])
            return value

    def write(
        self,
        jobs: Iterable[dict[str, Any]],
        nodes: Iterable[dict[str, Any]],
        next_job_id: int,
        meta: dict[str, str] | None = None,
    ) -> None:
        """Upsert the given rows, the job id counter and ``meta`` (key -> text, e.g. the
        fair-share usage ledger) in one transaction."""
        jobs, nodes = list(jobs), list(nodes)
        rows = [{"key": "next_job_id", "value": str(next_job_id)}]
        rows += [{"key": k, "value": v} for k, v in (meta or {}).items()]
        with self._lock:
            conn = self._writer
            if conn is None:  # PostgreSQL: a pooled connection, checked on checkout
                with self.engine.begin() as conn:
                    self._write(conn, jobs, nodes, rows)
            else:
                with conn.begin():
                    self._write(conn, jobs, nodes, rows)

    def _write(
        self,
        conn: sa.Connection,
        jobs: list[dict[str, Any]],
        nodes: list[dict[str, Any]],
        meta: list[dict[str, Any]],
    ) -> None:
        if jobs:
            self._upserts[0].run(conn, jobs)
        if nodes:
            self._upserts[1].run(conn, nodes)
        self._upserts[2].run(conn, meta)

    def load(self, cluster: Cluster, keep_finished_since: float) -> None:
        """Rebuild ``cluster`` from the database: active jobs, recent finished ones, nodes."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(meta_t.c.value).where(meta_t.c.key == "next_job_id")
            ).first()
            max_id = conn.execute(sa.select(sa.func.max(jobs_t.c.job_id))).scalar() or 0
            cluster.next_job_id = max(int(row[0]) if row else 1, max_id + 1)
            for r in conn.execute(sa.select(nodes_t)):
                m = r._mapping
                node = cluster.nodes.setdefault(m["name"], Node(m["name"]))
                node.cpus, node.mem_mb = m["cpus"], m["mem_mb"]
                node.gpus = [Gpu(**g) for g in json.loads(m["gpus"])]
                node.ever_registered = m["ever_registered"]
                node.drain, node.down_reason = m["drain"], m["down_reason"]
                node.reason, node.reason_time = m["reason"], m["reason_time"]
                node.reason_user = m["reason_user"]
                node.info = json.loads(m["info"])
                node.failures = json.loads(m["failures"] or "[]")
                # Agents reconnect after a controller restart; until they do the node
                # is up-but-unconnected and gets node_timeout's grace (set by main).
                node.up = m["up"]
            query = sa.select(jobs_t).where(
                sa.or_(
                    jobs_t.c.state.in_(["PENDING", "RUNNING", "COMPLETING", "REQUEUED"]),
                    jobs_t.c.end_time >= keep_finished_since,
                )
            )
            for r in conn.execute(query):
                job = row_to_job(r)
                cluster.jobs[job.job_id] = job
                for name in job.pending_nodes:
                    node = cluster.nodes.setdefault(name, Node(name))
                    a = job.alloc.get(name, {})
                    node.jobs[job.job_id] = (a.get("cpus", 0), a.get("mem_mb", 0), tuple(a.get("gpus", ())))
            policy_rows = {
                r[0]: r[1] for r in conn.execute(
                    sa.select(meta_t.c.key, meta_t.c.value).where(
                        meta_t.c.key.in_(["policy", "usage"])))
            }
        # the policy first: the usage ledger's share tree derives from it
        if "policy" in policy_rows:
            cluster.restore_policy(json.loads(policy_rows["policy"]))
        if "usage" in policy_rows:
            cluster.restore_usage(json.loads(policy_rows["usage"]))
        cluster.reindex()

    def history(
        self,
        job_ids: list[int],
        uids: list[int] | None,
        states: list[str],
        start_after: float,
        end_before: float,
        limit: int,
    ) -> list[Job]:
        q = sa.select(jobs_t)
        if job_ids:  # an array's id names every task of it
            q = q.where(sa.or_(jobs_t.c.job_id.in_(job_ids), jobs_t.c.array_job_id.in_(job_ids)))
        if uids is not None:
            q = q.where(jobs_t.c.uid.in_(uids))
        if states:
            q = q.where(jobs_t.c.state.in_(states))
        if start_after:
            q = q.where(sa.or_(jobs_t.c.end_time == 0, jobs_t.c.end_time >= start_after))
        if end_before:
            q = q.where(jobs_t.c.submit_time <= end_before)
        q = q.order_by(jobs_t.c.job_id)
        if limit:
            q = q.limit(limit)
        with self._lock, self.engine.connect() as conn:
            return [row_to_job(r) for r in conn.execute(q)]

    def write_step(self, row: dict[str, Any]) -> None:
        """Insert or update one job step (``row`` has the steps table's columns)."""
        stored = dict(row, nodes=json.dumps(list(row["nodes"])))
        with self._lock, self.engine.begin() as conn:
            done = conn.execute(
                steps_t.update()
                .where(steps_t.c.job_id == row["job_id"], steps_t.c.step_id == row["step_id"])
                .values(**stored)
            )
            if not done.rowcount:
                conn.execute(steps_t.insert().values(**stored))

    def steps(self, job_ids: list[int]) -> list[dict[str, Any]]:
        """Every recorded step of these jobs, by job and step id."""
        out: list[dict[str, Any]] = []
        with self._lock, self.engine.connect() as conn:
            for i in range(0, len(job_ids), 500):
                q = (
                    sa.select(steps_t)
                    .where(steps_t.c.job_id.in_(job_ids[i : i + 500]))
                    .order_by(steps_t.c.job_id, steps_t.c.step_id)
                )
                for r in conn.execute(q):
                    row = dict(r._mapping)
                    row["nodes"] = json.loads(row["nodes"])
                    out.append(row)
        return out

    def end_running_steps(self, now: float) -> int:
        """Steps recorded as running when the controller stopped: their callers are gone."""
        with self._lock, self.engine.begin() as conn:
            return conn.execute(
                steps_t.update()
                .where(steps_t.c.end_time == 0)
                .values(end_time=now, state="CANCELLED")
            ).rowcount

    def next_step_ids(self) -> dict[int, int]:
        """job id -> the next free step id, for every job with a recorded step."""
        q = sa.select(steps_t.c.job_id, sa.func.max(steps_t.c.step_id)).group_by(steps_t.c.job_id)
        with self._lock, self.engine.connect() as conn:
            return {int(j): int(m) + 1 for j, m in conn.execute(q)}

    def close(self) -> None:
        with self._lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None
        self.engine.dispose()


def _engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True)


class _Upsert:
    """An insert-or-update of whole rows, compiled once into the driver's own SQL.

    Executed with ``exec_driver_sql``: SQLAlchemy's per-row parameter processing
    (about a third of a small commit's time) is skipped. The row values are plain
    ``int``/``float``/``str``/``bool``/``bytes``, which sqlite3 and psycopg take as
    they are. Positional drivers (sqlite3: ``?``) get tuples in the compiled order,
    named ones (psycopg: ``%(name)s``) the row dicts.
    """

    def __init__(self, engine: Engine, table: sa.Table, key: str, columns: Iterable[str]) -> None:
        if engine.dialect.name == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        elif engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert  # type: ignore[assignment]
        else:  # pragma: no cover - other databases are not supported
            raise RuntimeError(f"unsupported database {engine.dialect.name}")
        stmt = insert(table)
        stmt = stmt.on_conflict_do_update(
            index_elements=[key],
            set_={c: stmt.excluded[c] for c in columns if c != key},
        )
        compiled = stmt.compile(dialect=engine.dialect)
        self.sql = compiled.string
        order = compiled.positiontup
        self._order: Callable[[dict[str, Any]], Any] | None = (
            None if not order else lambda row, names=tuple(order): tuple(row[n] for n in names)
        )

    def run(self, conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
        order = self._order
        conn.exec_driver_sql(self.sql, rows if order is None else [order(r) for r in rows])
