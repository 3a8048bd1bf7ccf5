"""The ticket log projection against a real nats-server, SQLite files and PostgreSQL.

Every test scripts ticket lifecycles on the bus under its own run id and feeds the
projection that run's deliveries (real stream sequences). Views come in three
stores; the PostgreSQL ones use the local server at 127.0.0.1:5432 (a database
made for this session, a schema per view) and are skipped if it does not answer.
"""

from __future__ import annotations

import asyncio
import random
import secrets
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import Tracking

from events import (
    Event,
    ServiceHeartbeat,
    TicketActionExecuted,
    TicketActionRequested,
    TicketClaimed,
    TicketDiagnosed,
    TicketEscalated,
    TicketOpened,
    TicketRecurred,
    TicketReopened,
    TicketResolved,
    TicketVerified,
    new_ticket_id,
)
from events.bus import Bus, Delivered
from events.envelope import Payload, utcnow
from events.subjects import run_events
from projections.ticket_log import (
    APPLICATION_NAME,
    POPOTicketLogView,
    SQLiteTicketLogView,
    TicketLogFeeder,
    TicketLogProjection,
    TicketLogSettings,
    TicketLogView,
    catch_up,
    follow,
    open_ticket_log,
    parse_store_url,
)
from tickets.state import TicketStatus

PG_BASE = "postgresql://postgres@127.0.0.1:5432"
ViewFactory = Callable[[str], TicketLogView]


# -- stores -----------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A uniquely named PostgreSQL database for this session, dropped at the end."""
    try:
        import psycopg
        from psycopg import sql
    except ImportError:
        pytest.skip("psycopg is not installed (pip install 'eventsourcing[postgres]')")
    try:
        admin = psycopg.connect(f"{PG_BASE}/postgres", autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 does not answer (user postgres, trust auth): {exc}")
    name = f"oplab_test_{secrets.token_hex(4)}"
    admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield name
    finally:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.close()


@pytest.fixture(params=["sqlite", "postgres", "memory"])
def store(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_view(store: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ViewFactory]:
    """Opens the named view of this test's store; the same name reopens the same data."""
    opened: list[TicketLogView] = []
    memory: dict[str, TicketLogView] = {}
    schemas: dict[str, str] = {}
    database = request.getfixturevalue("pg_database") if store == "postgres" else ""

    def make(name: str) -> TicketLogView:
        if store == "memory":
            return memory.setdefault(name, POPOTicketLogView())
        if store == "sqlite":
            url = f"sqlite:///{tmp_path / name}.sqlite"
        else:
            if name not in schemas:
                schemas[name] = _create_schema(database, f"v_{name}_{secrets.token_hex(3)}")
            url = f"{PG_BASE}/{database}?schema={schemas[name]}"
        view = open_ticket_log(TicketLogSettings(ticketlog_url=url))
        opened.append(view)
        return view

    yield make
    for view in opened:
        view.close()


def _create_schema(database: str, schema: str) -> str:
    import psycopg
    from psycopg import sql

    with psycopg.connect(f"{PG_BASE}/{database}", autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    return schema


# -- scripted lifecycles ----------------------------------------------------


def happy_path(tid: str) -> list[Payload]:
    now = utcnow()
    return [
        TicketOpened(ticket_id=tid, invariant="node_down", entity="node-2", subject="ratelimiter",
                     summary="node-2 is down", evidence={"last_seen_s": 4.2}, first_seen=now),
        TicketRecurred(ticket_id=tid, evidence={"last_seen_s": 5.0}),
        TicketClaimed(ticket_id=tid, agent="agent-1", policy="rules", lease_until=now + timedelta(seconds=30)),
        TicketDiagnosed(ticket_id=tid, hypothesis="node-2 process is not running", evidence={}),
        TicketActionRequested(ticket_id=tid, action_id="x1", tool="restart_node", args={"node": "node-2"}),
        TicketActionExecuted(ticket_id=tid, action_id="x1", tool="restart_node", args={"node": "node-2"},
                             ok=True, result="started"),
        TicketVerified(ticket_id=tid, evidence={"cleared": True}),
        TicketResolved(ticket_id=tid, by="agent", agent="agent-1", note="restarted node-2"),
    ]


def escalated_path(tid: str) -> list[Payload]:
    now = utcnow()
    return [
        TicketOpened(ticket_id=tid, invariant="over_limit", entity="key:alice", subject="ratelimiter",
                     summary="alice over limit", first_seen=now),
        TicketClaimed(ticket_id=tid, agent="agent-2", policy="rules", lease_until=now + timedelta(seconds=9)),
        TicketEscalated(ticket_id=tid, reason="agent stopping", agent="agent-2"),
    ]


def self_healed_then_reopened(tid: str) -> list[Payload]:
    return [
        TicketOpened(ticket_id=tid, invariant="node_down", entity="node-1", subject="ratelimiter",
                     summary="node-1 is down", first_seen=utcnow()),
        TicketResolved(ticket_id=tid, by="self-healed"),
        TicketReopened(ticket_id=tid, reason="violated again"),
    ]


def beat(n: int) -> ServiceHeartbeat:
    return ServiceHeartbeat(service="monitor", instance="m1", version="t", pid=n, uptime_s=float(n))


def interleave(*scripts: list[Payload]) -> list[Payload]:
    """Round-robin the scripts (each keeps its own order), a heartbeat after every round."""
    out: list[Payload] = []
    for i in range(max(len(s) for s in scripts)):
        out += [s[i] for s in scripts if i < len(s)]
        out.append(beat(i))
    return out


async def publish(bus: Bus, run: str, payloads: list[Payload]) -> list[int]:
    return await bus.publish_batch([bus.event(p, run=run) for p in payloads])


async def deliveries(bus: Bus, run: str) -> list[Delivered]:
    got: list[Delivered] = []

    async def keep(d: Delivered) -> None:
        got.append(d)

    await bus.replay(run_events(run), keep)
    return got


def project(view: TicketLogView, batch: list[Delivered]) -> None:
    TicketLogProjection(view).process_batch(batch)


async def fold_run(bus: Bus, view: TicketLogView, run: str, **kw: Any) -> int:
    feeder = TicketLogFeeder(TicketLogProjection(view), **kw)
    return await catch_up(bus, feeder, filter_subject=run_events(run))


# -- the fold ---------------------------------------------------------------


async def test_a_scripted_lifecycle_folds_into_the_right_rows(bus: Bus, run_id: str,
                                                              make_view: ViewFactory) -> None:
    a, b, c = new_ticket_id(), new_ticket_id(), new_ticket_id()
    seqs = await publish(bus, run_id, interleave(happy_path(a), escalated_path(b), self_healed_then_reopened(c)))
    view = make_view("main")
    assert await fold_run(bus, view, run_id) == len(seqs)
    assert view.max_tracking_id() == seqs[-1]

    row = view.get_ticket(a)
    assert row is not None
    assert (row.run, row.status, row.claimed_by, row.policy) == (run_id, TicketStatus.RESOLVED, "agent-1", "rules")
    assert (row.resolved_by, row.outcome_note, row.lease_until) == ("agent", "restarted node-2", None)
    assert (row.hypothesis, row.recurrences, row.events) == ("node-2 process is not running", 1, 8)
    assert [(x.action_id, x.tool, x.args, x.status, x.ok) for x in row.actions] == [
        ("x1", "restart_node", {"node": "node-2"}, "executed", True)]
    assert row.opened_at <= row.updated_at

    escalated = view.get_ticket(b)
    assert escalated is not None
    assert (escalated.status, escalated.outcome_note, escalated.events) == (TicketStatus.ESCALATED,
                                                                          "agent stopping", 3)
    reopened = view.get_ticket(c, run=run_id)
    assert reopened is not None
    assert (reopened.status, reopened.resolved_by, reopened.outcome_note) == (TicketStatus.OPEN, None,
                                                                             "violated again")

    assert {t.ticket_id for t in view.list_tickets(run=run_id)} == {a, b, c}
    assert [t.ticket_id for t in view.list_tickets(run=run_id, status="escalated")] == [b]
    assert [t.ticket_id for t in view.list_tickets(run=run_id, status=TicketStatus.OPEN)] == [c]
    assert len(view.list_tickets(run=run_id, limit=2)) == 2
    newest_first = view.list_tickets(run=run_id)
    assert [t.opened_at for t in newest_first] == sorted((t.opened_at for t in newest_first), reverse=True)
    assert view.list_tickets(run=run_id + "-other") == []
    assert view.get_ticket("tk-none") is None
    with pytest.raises(ValueError, match="unknown ticket status"):
        view.list_tickets(status="bogus")


async def test_a_duplicate_delivery_is_ignored(bus: Bus, run_id: str, make_view: ViewFactory) -> None:
    await publish(bus, run_id, interleave(happy_path(new_ticket_id()), escalated_path(new_ticket_id())))
    ds = await deliveries(bus, run_id)
    view, once = make_view("dup"), make_view("once")
    projection = TicketLogProjection(view)

    first = projection.process_batch(ds[:5])
    assert first is not None and first.events == 5
    again = projection.process_batch(ds[2:8])  # 2..4 already tracked
    assert again is not None and (again.events, again.first_seq) == (3, ds[5].seq)
    assert projection.process_batch(ds[:8]) is None  # nothing new: nothing written
    twice = projection.process_batch([ds[8], ds[8], ds[9], ds[9]])
    assert twice is not None and twice.events == 2
    projection.process_event(ds[3].event, Tracking(APPLICATION_NAME, ds[3].seq))  # old: ignored
    projection.process_batch(ds[10:])
    project(once, ds)
    assert view.dump_rows() == once.dump_rows()
    assert view.max_tracking_id() == ds[-1].seq
    assert sum(t.events for t in view.list_tickets(run=run_id)) == 11  # 8 + 3, none counted twice


async def test_non_ticket_events_advance_tracking_only(bus: Bus, run_id: str, make_view: ViewFactory) -> None:
    seqs = await publish(bus, run_id, [beat(n) for n in range(20)])
    view = make_view("beats")
    assert await fold_run(bus, view, run_id) == 20
    assert view.max_tracking_id() == seqs[-1]
    assert view.dump_rows() == []


async def test_a_ticket_event_before_its_opening_is_skipped_not_fatal(bus: Bus, run_id: str,
                                                                      make_view: ViewFactory) -> None:
    orphan, tid = new_ticket_id(), new_ticket_id()
    late = TicketClaimed(ticket_id=orphan, agent="a", policy="rules", lease_until=utcnow())
    seqs = await publish(bus, run_id, [late, *happy_path(tid)[:3]])
    view = make_view("orphan")
    await fold_run(bus, view, run_id)
    assert view.get_ticket(orphan) is None
    assert view.get_ticket(tid) is not None
    assert view.max_tracking_id() == seqs[-1]


async def test_batch_boundaries_do_not_change_the_rows(bus: Bus, run_id: str) -> None:
    scripts = [happy_path(new_ticket_id()) for _ in range(4)] + [escalated_path(new_ticket_id())]
    await publish(bus, run_id, interleave(*scripts))
    ds = await deliveries(bus, run_id)
    whole = POPOTicketLogView()
    project(whole, ds)
    rng = random.Random(7)
    for _ in range(10):
        view, i = POPOTicketLogView(), 0
        while i < len(ds):
            step = rng.randint(1, 9)
            back = rng.randint(0, 3)  # overlap with what was already fed
            project(view, ds[max(0, i - back):i + step])
            i += step
        assert view.dump_rows() == whole.dump_rows()


async def test_every_store_holds_the_same_rows(bus: Bus, run_id: str, tmp_path: Path,
                                              request: pytest.FixtureRequest) -> None:
    await publish(bus, run_id, interleave(happy_path(new_ticket_id()), self_healed_then_reopened(new_ticket_id())))
    urls = [f"sqlite:///{tmp_path / 'same.sqlite'}", "memory://"]
    try:
        database = request.getfixturevalue("pg_database")
        urls.append(f"{PG_BASE}/{database}?schema={_create_schema(database, 'same_' + secrets.token_hex(3))}")
    except pytest.skip.Exception:
        pass  # PostgreSQL absent: compare the others
    dumps = []
    for url in urls:
        view = open_ticket_log(TicketLogSettings(ticketlog_url=url))
        try:
            await fold_run(bus, view, run_id)
            dumps.append(view.dump_rows())
        finally:
            view.close()
    assert len(dumps[0]) == 2
    assert all(d == dumps[0] for d in dumps)


# -- resuming and rebuilding ------------------------------------------------


@pytest.mark.parametrize("store", ["sqlite", "postgres"], indirect=True)
@pytest.mark.parametrize("k", [1, 7, 19])
async def test_a_restart_mid_stream_resumes_to_the_same_rows(bus: Bus, run_id: str,
                                                             make_view: ViewFactory, k: int) -> None:
    scripts = [happy_path(new_ticket_id()), escalated_path(new_ticket_id()),
               self_healed_then_reopened(new_ticket_id())]
    await publish(bus, run_id, interleave(*scripts))
    ds = await deliveries(bus, run_id)

    before = make_view("resumed")
    for i in range(0, k, 3):  # stop after k events, committed in batches of 3
        project(before, ds[i:min(i + 3, k)])
    assert before.max_tracking_id() == ds[k - 1].seq
    before.close()

    after = make_view("resumed")  # the same store, reopened
    assert after.max_tracking_id() == ds[k - 1].seq
    assert await fold_run(bus, after, run_id, batch_size=4) == len(ds) - k

    single = make_view("single")
    assert await fold_run(bus, single, run_id) == len(ds)
    assert after.dump_rows() == single.dump_rows()
    assert after.max_tracking_id() == single.max_tracking_id() == ds[-1].seq
    assert await fold_run(bus, after, run_id) == 0  # caught up: nothing folded twice


async def wait_committed(feeder: TicketLogFeeder, seq: int, timeout: float = 10.0) -> None:
    async def reached() -> None:
        while feeder.committed_seq < seq:
            feeder.progress.clear()
            if feeder.committed_seq >= seq:
                return
            await feeder.progress.wait()

    await asyncio.wait_for(reached(), timeout)


async def test_a_rebuild_from_sequence_one_equals_the_incremental_view(bus: Bus, run_id: str,
                                                                     make_view: ViewFactory) -> None:
    incremental = make_view("incremental")
    feeder = TicketLogFeeder(TicketLogProjection(incremental), batch_size=5, flush_interval_s=0.01)
    stop = asyncio.Event()
    following = asyncio.create_task(follow(bus, feeder, stop, filter_subject=run_events(run_id)))
    ids = [new_ticket_id() for _ in range(6)]
    for burst in (interleave(happy_path(ids[0]), escalated_path(ids[1])),
                  interleave(happy_path(ids[2]), self_healed_then_reopened(ids[3])),
                  interleave(happy_path(ids[4]), happy_path(ids[5]))):
        seqs = await publish(bus, run_id, burst)
        await wait_committed(feeder, seqs[-1])
    stop.set()
    await asyncio.wait_for(following, 10)
    assert feeder.batches > 1

    # resume following from the tracked position (at the stream's end), then more events arrive
    feeder, stop = TicketLogFeeder(TicketLogProjection(incremental), flush_interval_s=0.01), asyncio.Event()
    following = asyncio.create_task(follow(bus, feeder, stop, filter_subject=run_events(run_id)))
    seqs = await publish(bus, run_id, escalated_path(ids[0])[1:])  # ids[0] already resolved: recorded anyway
    await wait_committed(feeder, seqs[-1])
    stop.set()
    await asyncio.wait_for(following, 10)
    assert feeder.events == 2

    rebuilt = make_view("rebuilt")
    await fold_run(bus, rebuilt, run_id)
    assert rebuilt.dump_rows() == incremental.dump_rows()
    assert len(rebuilt.dump_rows()) == 6

    incremental.clear()
    assert (incremental.max_tracking_id(), incremental.dump_rows()) == (None, [])
    await fold_run(bus, incremental, run_id)
    assert incremental.dump_rows() == rebuilt.dump_rows()


# -- empty and settings -----------------------------------------------------


async def test_an_empty_log_is_a_normal_state(bus: Bus, run_id: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    view = open_ticket_log(TicketLogSettings(home=home))
    try:
        assert isinstance(view, SQLiteTicketLogView)
        assert (home / "ticketlog.sqlite").exists()
        assert view.list_tickets() == []
        assert view.list_tickets(run=run_id, status="open") == []
        assert view.get_ticket("tk-nothing") is None
        assert view.max_tracking_id() is None
        assert await fold_run(bus, view, run_id) == 0
        assert view.max_tracking_id() is None
    finally:
        view.close()
    reopened = open_ticket_log(TicketLogSettings(home=home))  # tables exist: created once
    assert reopened.list_tickets() == []
    reopened.close()


def test_settings_choose_the_store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OPLAB_HOME", str(tmp_path / "h"))
    monkeypatch.delenv("OPLAB_TICKETLOG_URL", raising=False)
    settings = TicketLogSettings()
    assert settings.url() == f"sqlite:///{tmp_path / 'h' / 'ticketlog.sqlite'}"
    assert settings.location().path == tmp_path / "h" / "ticketlog.sqlite"
    monkeypatch.setenv("OPLAB_TICKETLOG_URL", "postgresql://lab:pw@db.local:6543/tickets?schema=oplab")
    pg = TicketLogSettings().location()
    assert (pg.kind, pg.user, pg.password, pg.host, pg.port, pg.dbname, pg.schema) == (
        "postgres", "lab", "pw", "db.local", 6543, "tickets", "oplab")
    assert "pw" not in pg.describe()
    assert parse_store_url("sqlite:///rel/t.sqlite").path == Path("rel/t.sqlite")
    assert parse_store_url("memory://").kind == "memory"
    assert isinstance(open_ticket_log(TicketLogSettings(ticketlog_url="memory://")), POPOTicketLogView)
    for bad in ("mysql://x/y", "postgresql://host:5432/", "sqlite:///"):
        with pytest.raises(ValueError):
            parse_store_url(bad)


def test_an_unreachable_postgres_fails_clearly() -> None:
    pytest.importorskip("psycopg", reason="psycopg is not installed")
    from eventsourcing.persistence import OperationalError

    with pytest.raises(OperationalError, match="unreachable"):
        open_ticket_log(TicketLogSettings(ticketlog_url="postgresql://postgres@127.0.0.1:1/none"))


def test_process_event_is_the_one_event_batch() -> None:
    view = POPOTicketLogView()
    projection = TicketLogProjection(view)
    tid = new_ticket_id()
    event = Event(type="ticket.opened", run="r1", source="t", data=happy_path(tid)[0])
    projection.process_event(event, Tracking(APPLICATION_NAME, 3))
    projection.process_event(event, Tracking(APPLICATION_NAME, 3))
    state = view.get_ticket(tid)
    assert state is not None and state.events == 1
    assert view.max_tracking_id() == 3
    with pytest.raises(ValueError):
        projection.process_event(event, Tracking("OTHER", 4))
