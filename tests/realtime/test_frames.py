"""Per-connection frame pacing: one state per fragment per interval, latest wins, never stale."""

import asyncio
import time

import pytest

from realtime.frames import RENDER_HERE, FramePacer

INTERVAL = 0.5
DEADLINE_SECONDS = 10


def at(moment: float) -> float:
    """A state's stamp, moments a hundredth of a second apart: states rendered within one interval."""
    return moment / 100


class Browser:
    """Collect what a pacer sends, as a websocket would."""

    def __init__(self):
        self.frames: list[str] = []
        self.renders = 0

    async def send(self, html: str) -> None:
        self.frames.append(html)

    async def render(self, name: str) -> tuple[float, str]:
        self.renders += 1
        return time.time(), f"<div id='{name}'>rendered here {self.renders}</div>"

    async def wait_for(self, count: int) -> None:
        end = time.monotonic() + DEADLINE_SECONDS
        while len(self.frames) < count:
            if time.monotonic() > end:
                pytest.fail(f"only {len(self.frames)} of {count} frames arrived")
            await asyncio.sleep(0.01)


@pytest.fixture
def browser():
    return Browser()


def wrap_rows(name: str, rows: list[str]) -> str:
    return f"{name}: " + " ".join(rows)


@pytest.fixture
def pacer(browser):
    pacer = FramePacer(send=browser.send, render=browser.render, interval=INTERVAL, wrap_rows=wrap_rows)
    yield pacer
    pacer.close()


async def test_first_frame_goes_out_at_once_and_a_burst_collapses_to_its_latest(pacer, browser):
    for number in range(50):
        await pacer.offer("inventory-table", f"state {number}", stamp=at(1000.0 + number))

    assert browser.frames == ["state 0"]
    await browser.wait_for(2)
    assert browser.frames == ["state 0", "state 49"]
    assert pacer.frames_dropped == 48


async def test_a_state_rendered_an_interval_after_the_last_sent_goes_at_once(pacer, browser):
    """The publisher spaces its renders; one that arrives early (the last took longer) is not held again."""
    await pacer.offer("metric-cards", "cards at 0", stamp=100.0)
    await pacer.offer_rows("recent-orders", {"order-1": "o1"}, stamp=100.0)
    await pacer.offer("metric-cards", "cards one interval on", stamp=100.0 + INTERVAL)
    await pacer.offer_rows("recent-orders", {"order-2": "o2"}, stamp=100.0 + INTERVAL)

    assert browser.frames == ["cards at 0", "recent-orders: o1", "cards one interval on", "recent-orders: o2"]


async def test_a_state_rendered_within_an_interval_of_the_last_sent_waits_out_the_interval(pacer, browser):
    await pacer.offer("metric-cards", "cards at 0", stamp=100.0)
    started = time.monotonic()
    await pacer.offer("metric-cards", "cards just after", stamp=100.0 + INTERVAL * 0.9)

    assert browser.frames == ["cards at 0"]
    await browser.wait_for(2)
    assert time.monotonic() - started >= INTERVAL * 0.9  # held until the last frame's interval ended
    assert browser.frames == ["cards at 0", "cards just after"]


async def test_fragments_are_paced_independently(pacer, browser):
    await pacer.offer("inventory-table", "table 1", stamp=at(1.0))
    await pacer.offer("metric-cards", "cards 1", stamp=at(1.0))
    assert browser.frames == ["table 1", "cards 1"]


async def test_a_state_older_than_one_sent_is_never_sent(pacer, browser):
    await pacer.offer("metric-cards", "new", stamp=at(20.0))
    await pacer.offer("metric-cards", "old", stamp=at(10.0))
    await pacer.offer("metric-cards", "newer", stamp=at(30.0))
    await pacer.offer("metric-cards", "older than pending", stamp=at(25.0))

    await browser.wait_for(2)
    assert browser.frames == ["new", "newer"]


async def test_snapshot_supersedes_pending_states_it_is_newer_than(pacer, browser):
    await pacer.offer("alert-list", "first", stamp=at(1.0))
    await pacer.offer("alert-list", "pending", stamp=at(2.0))

    await pacer.send_now({"alert-list": "snapshot"}, stamp=at(3.0))
    await pacer.offer("alert-list", "stale broadcast", stamp=at(2.5))

    assert browser.frames == ["first", "snapshot"]
    assert await _nothing_more(browser, count=2)


async def test_filtered_fragments_render_once_at_send_time(pacer, browser):
    await pacer.offer("recent-orders", RENDER_HERE, stamp=time.time())
    for _ in range(10):
        await pacer.offer("recent-orders", RENDER_HERE, stamp=time.time())

    await browser.wait_for(2)
    assert browser.renders == 2
    assert browser.frames[-1] == "<div id='recent-orders'>rendered here 2</div>"


async def test_close_cancels_pending_frames(pacer, browser):
    await pacer.offer("orders-chart", "sent", stamp=at(1.0))
    await pacer.offer("orders-chart", "pending", stamp=at(2.0))
    pacer.close()
    assert await _nothing_more(browser, count=1)


# --- rows pushed on their own ------------------------------------------------------------------


async def test_rows_of_a_burst_go_out_together_newest_state_of_each_and_none_lost(pacer, browser):
    await pacer.offer_rows("recent-orders", {"order-1": "o1 v1"}, stamp=at(1.0))
    await pacer.offer_rows("recent-orders", {"order-2": "o2 v1"}, stamp=at(2.0))
    await pacer.offer_rows("recent-orders", {"order-1": "o1 v2", "order-3": "o3 v1"}, stamp=at(3.0))
    await pacer.offer_rows("recent-orders", {"order-3": "o3 older"}, stamp=at(2.5))

    assert browser.frames == ["recent-orders: o1 v1"]
    await browser.wait_for(2)
    assert browser.frames[1] == "recent-orders: o2 v1 o1 v2 o3 v1"
    assert await _nothing_more(browser, count=2)


async def test_a_row_older_than_a_whole_render_sent_is_dropped(pacer, browser):
    await pacer.offer("inventory-table", "table at 5", stamp=at(5.0))
    await pacer.offer_rows("inventory-table", {"product-1": "row at 4"}, stamp=at(4.0))
    await pacer.offer_rows("inventory-table", {"product-2": "row at 6"}, stamp=at(6.0))

    assert browser.frames == ["table at 5", "inventory-table: row at 6"]


async def test_rows_wait_behind_a_pending_whole_render_of_their_fragment(pacer, browser):
    await pacer.offer("recent-orders", "list 1", stamp=at(1.0))
    await pacer.offer("recent-orders", "list 2", stamp=at(2.0))  # pending: paced
    await pacer.offer_rows("recent-orders", {"order-9": "row at 3"}, stamp=at(3.0))
    await pacer.offer_rows("recent-orders", {"order-8": "row at 1.5"}, stamp=at(1.5))

    assert browser.frames == ["list 1"]
    await browser.wait_for(2)
    # The list's render first, then what is newer than it: never a row under an older list.
    assert browser.frames == ["list 1", "list 2" "recent-orders: row at 3"]


async def test_a_whole_render_older_than_a_row_sent_is_rendered_afresh(pacer, browser):
    await pacer.offer_rows("alert-list", {"alert-1": "row at 5"}, stamp=at(5.0))
    await pacer.send_now({"alert-list": "snapshot begun at 4"}, stamp=at(4.0))

    assert browser.frames == ["alert-list: row at 5", "<div id='alert-list'>rendered here 1</div>"]


async def test_everything_due_together_goes_out_as_one_frame_renders_before_rows(pacer, browser):
    rows = {"recent-orders": {"order-1": "o1"}, "inventory-table": {"product-1": "p1"}}
    await pacer.offer_all({"metric-cards": "cards 1", "orders-chart": "chart 1"}, rows, stamp=at(1.0))
    await pacer.offer_all({"metric-cards": "cards 2", "orders-chart": "chart 2"}, {"recent-orders": {"order-2": "o2"}}, stamp=at(2.0))
    await pacer.offer_all({"metric-cards": "cards 3"}, {"recent-orders": {"order-3": "o3"}}, stamp=at(3.0))

    # One websocket write per moment, whatever it carries: a push costs each tab one frame.
    assert browser.frames == ["cards 1" "chart 1" "recent-orders: o1" "inventory-table: p1"]
    await browser.wait_for(2)
    assert browser.frames[1:] == ["cards 3" "chart 2" "recent-orders: o2 o3"]
    assert await _nothing_more(browser, count=2)


async def _nothing_more(browser: Browser, *, count: int) -> bool:
    """Wait past two intervals and tell whether the frame count stayed at ``count``."""
    await asyncio.sleep(INTERVAL * 2)
    return len(browser.frames) == count
