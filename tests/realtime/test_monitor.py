"""The per-process realtime monitor: counters, reports, the backlog limit, the staff page."""

import asyncio
import logging
import time

import pytest
from asgiref.sync import sync_to_async

from creatorflow.changes import Change
from orders.models import SyncOperation
from realtime import monitor as monitor_module
from realtime.frames import FramePacer
from creatorflow.models import SystemHealth
from realtime.monitor import MONITOR, RealtimeMonitor
from realtime.runtime import coalescer, coalescer_reset

from tests.orders.test_resync import resync_heard_from

from .conftest import websocket_open
from .test_consumers import receive_snapshot


def test_monitor_counts_connections_groups_and_frames():
    monitor = RealtimeMonitor()
    monitor.connection_opened(1)
    monitor.connection_opened(1)
    monitor.connection_opened(2)
    monitor.connection_closed(1)
    monitor.frame_sent(0.004)
    monitor.frame_sent(0.012)
    monitor.frame_coalesced()
    monitor.frames_lost(3)
    figures = monitor.snapshot()
    assert (figures["connections"], figures["groups"]) == (2, 2)
    assert (figures["frames_sent"], figures["frames_coalesced"], figures["frames_dropped"]) == (2, 1, 3)
    assert figures["slowest_send_ms"] == 12.0


def test_snapshot_counts_the_publishes_this_process_started():
    published = []
    coalescer_reset()
    try:
        assert RealtimeMonitor().snapshot()["publishes"] == 0  # no publisher yet
        publisher = coalescer(0.05, lambda changes: published.extend(changes))
        publisher.add(1, Change.of("orders"))
        publisher.add(2, Change.of("orders"))
        deadline = time.monotonic() + 5
        while len(published) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sorted(published) == [1, 2]
        snapshot = RealtimeMonitor().snapshot()
        assert snapshot["publishes"] == 2
        assert 1 <= snapshot["publish_cycles"] <= 2  # both creators in one cycle, or each in its own
    finally:
        coalescer_reset()


def _busy(seconds: float) -> None:
    until = time.thread_time() + seconds
    while time.thread_time() < until:
        pass


@pytest.mark.django_db
def test_snapshot_tells_what_publishing_took_and_how_much_of_it_on_cpu():
    """A cycle that waits (as for a CPU held by others) shows a low CPU share; the slowest starts over with each report."""
    published = []

    def publish(changes):
        _busy(0.02)
        time.sleep(0.08)  # off the CPU
        published.extend(changes)

    coalescer_reset()
    try:
        figures = RealtimeMonitor().snapshot()
        assert (figures["publish_ms_mean"], figures["slowest_publish_ms"], figures["publish_cpu_percent"]) == (0.0, 0.0, 0)
        publisher = coalescer(0.05, publish)
        publisher.add(1, Change.of("orders"))
        deadline = time.monotonic() + 5
        while publisher.publish_seconds == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        monitor = RealtimeMonitor()
        figures = monitor.snapshot()
        assert published == [1]
        assert 100.0 <= figures["publish_ms_mean"] == figures["slowest_publish_ms"]
        assert 10 <= figures["publish_cpu_percent"] <= 50
        monitor.report()
        after = monitor.snapshot()
        assert after["slowest_publish_ms"] == 0.0  # the slowest of each reporting interval
        assert after["publish_ms_mean"] == figures["publish_ms_mean"]  # the mean since the process started
    finally:
        coalescer_reset()


@pytest.mark.django_db
def test_report_logs_a_line_and_stores_a_health_record(caplog):
    monitor = RealtimeMonitor()
    monitor.connection_opened(7)
    with caplog.at_level(logging.INFO, logger="creatorflow.realtime.monitor"):
        figures = monitor.report()
    assert "connections=1 groups=1" in caplog.text
    record = SystemHealth.objects.get(component=monitor.component)
    assert (record.status, record.metrics["connections"]) == ("nominal", 1)
    assert figures["process"] == monitor.component


@pytest.mark.django_db
def test_more_than_5000_connections_is_a_warning(caplog, monkeypatch):
    monkeypatch.setattr(monitor_module, "CONNECTIONS_WARNING", 3)
    monitor = RealtimeMonitor()
    with caplog.at_level(logging.WARNING, logger="creatorflow.realtime.monitor"):
        for creator_id in range(4):
            monitor.connection_opened(creator_id)
    assert "holds 4 connections" in caplog.text
    monitor.report()
    assert SystemHealth.objects.get(component=monitor.component).status == "warning"


async def test_pacer_reports_a_backlog_over_the_limit(monkeypatch):
    monkeypatch.setattr("realtime.frames.BACKLOG_LIMIT", 5)
    blocked = asyncio.Event()
    overflows = []

    async def never_done(html):
        await blocked.wait()

    async def render(name):
        return 0.0, name

    async def on_backlog(backlog):
        overflows.append(backlog)

    pacer = FramePacer(send=never_done, render=render, interval=10.0, on_backlog=on_backlog)
    for number in range(8):
        # First frame of each fragment goes straight to the (stuck) socket, the second waits.
        asyncio.get_running_loop().create_task(pacer.offer(f"f{number}", "x", stamp=1.0))
        await asyncio.sleep(0)
        await pacer.offer(f"f{number}", "y", stamp=2.0)
    assert pacer.backlog == 16
    assert overflows and overflows[0] == 6
    pacer.close()
    blocked.set()


@pytest.mark.django_db(transaction=True)
async def test_connections_are_counted_while_open(creator):
    before = MONITOR.connections
    communicator, _ = await websocket_open(creator)
    try:
        await receive_snapshot(communicator)
        assert MONITOR.connections == before + 1
        assert MONITOR.groups[creator.pk] >= 1
        assert MONITOR.frames_sent > 0
    finally:
        await communicator.disconnect()
    assert MONITOR.connections == before


@pytest.mark.django_db
def test_system_page_is_for_staff_and_lists_reporting_processes(client, creator, make_creator):
    RealtimeMonitor().report()
    client.force_login(creator)
    assert client.get("/system/").status_code == 302  # to the admin login
    client.force_login(make_creator("ops", is_staff=True))
    page = client.get("/system/")
    assert page.status_code == 200
    assert b"Realtime servers" in page.content
    assert MONITOR.component.removeprefix("realtime@").encode() in page.content


@pytest.mark.django_db
def test_a_process_report_refreshes_the_dashboards_only_when_its_status_changes(creator, django_capture_on_commit_callbacks):
    monitor = RealtimeMonitor()
    with django_capture_on_commit_callbacks() as first:
        monitor.report()  # a new process, nominal: what every dashboard assumed of it already
    monitor.backlog_exceeded(creator_id=creator.pk, backlog=1001)
    with django_capture_on_commit_callbacks() as warning:
        monitor.report()
    with django_capture_on_commit_callbacks() as steady:
        monitor.report()  # same status as the last report: nothing for dashboards to show
    assert first == [] and steady == []
    assert len(warning) >= 1


@pytest.mark.django_db(transaction=True)
async def test_each_server_process_marks_dead_resyncs_failed_on_its_monitor_beat(shop):
    dead = await sync_to_async(resync_heard_from)(shop, 11)
    monitor = RealtimeMonitor()

    monitor.reporting_start(interval=3600)
    deadline = time.monotonic() + 10
    while (await SyncOperation.objects.aget(pk=dead.pk)).status != "failed":
        assert time.monotonic() < deadline, "the monitor's first beat did not mark the dead resync failed"
        await asyncio.sleep(0.05)
    monitor._reporter.cancel()


@pytest.mark.django_db
def test_system_page_lists_each_process_once_with_its_latest_report(admin_client):
    MONITOR.report()
    MONITOR.report()  # two reports of this process: still one row
    RealtimeMonitor().report()  # another process's report, renamed as if from another machine
    SystemHealth.objects.filter(pk=SystemHealth.objects.latest("pk").pk).update(component="realtime@other-host:4242")

    html = admin_client.get("/system/").content.decode()

    this_process = MONITOR.component.removeprefix("realtime@")
    assert html.count(f"<td>{this_process} ") == 1 and f"<td>{this_process}</td>" not in html
    assert html.count("<td>other-host:4242</td>") == 1
    assert "2 processes." in html
    assert "No process has reported" not in html
    assert "not yet" not in html  # this process's latest report is shown with it


@pytest.mark.django_db
def test_system_page_shows_each_process_stock_write_back(admin_client):
    RealtimeMonitor().report()
    other = SystemHealth.objects.latest("pk")
    other.component = "realtime@other-host:4242"
    other.metrics |= {"stock_write_back_calls": 40, "stock_write_back_owed": 3, "stock_write_back_shops_failing": 2}
    other.save()

    html = admin_client.get("/system/").content.decode()

    assert "40 sent · 3 owed" in html and "2 shops failing" in html
    assert "0 sent · 0 owed" in html  # this process: its writer has sent nothing
    assert MONITOR.snapshot()["stock_write_back_owed"] == 0


def test_admin_says_creatorflow(client):
    assert "<title>Log in | CreatorFlow administration</title>" in client.get("/admin/login/").content.decode()


@pytest.mark.django_db
def test_system_page_shows_each_process_publishes_and_cycles(admin_client):
    RealtimeMonitor().report()
    other = SystemHealth.objects.latest("pk")
    other.component = "realtime@other-host:4242"
    other.metrics |= {"publishes": 1368, "publish_cycles": 195, "publish_ms_mean": 71.6, "slowest_publish_ms": 229.1, "publish_cpu_percent": 24}
    other.save()
    RealtimeMonitor().report()
    older = SystemHealth.objects.latest("pk")  # a report from before cycles were counted
    older.component = "realtime@old-host:1"
    older.metrics = {key: value for key, value in older.metrics.items() if key != "publish_cycles" and "publish_" not in key}
    older.save()

    html = admin_client.get("/system/").content.decode()

    assert '<td class="num">1368</td><td class="num">195</td>' in html
    assert "71.6 ms mean · 229.1 ms slowest · 24 % on CPU" in html
    row = html[html.index("<td>old-host:1</td>"):]
    assert '<td class="num">—</td>' in row[: row.index("</tr>")]
    assert "ms mean" not in row[: row.index("</tr>")]  # a report from before publish times were kept
