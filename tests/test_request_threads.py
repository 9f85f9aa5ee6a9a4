"""Deliveries borrow their request thread (``creatorflow.asgi.RequestThreads``) instead of starting one each."""

import asyncio
import threading

from asgiref.sync import sync_to_async

from creatorflow.asgi import RequestThreads


async def _request(threads: RequestThreads, hops: int = 3, pause: asyncio.Event | None = None) -> set[int]:
    """What one request's synchronous hops ran on, as Django's handler makes them (signals, view, close)."""
    seen = set()
    async with threads.lent():
        for _ in range(hops):
            seen.add(await sync_to_async(threading.get_ident)())
            if pause is not None:
                await pause.wait()
    return seen


async def test_a_request_runs_its_synchronous_code_on_one_thread_and_the_next_request_reuses_it():
    threads = RequestThreads()
    first = await _request(threads)
    second = await _request(threads)
    assert len(first) == 1
    assert second == first  # no thread started for the second request
    assert threading.get_ident() not in first  # never on the event loop's thread


async def test_requests_at_once_never_share_a_thread_and_idle_threads_are_kept_up_to_the_limit():
    threads = RequestThreads(keep=2)
    release = asyncio.Event()
    running = [asyncio.create_task(_request(threads, pause=release)) for _ in range(3)]
    await asyncio.sleep(0.05)
    release.set()
    seen = await asyncio.gather(*running)
    assert all(len(request) == 1 for request in seen)
    assert len(set().union(*seen)) == 3  # three requests at once, three threads
    assert len(threads._idle) == 2  # the third was let go
    after = await _request(threads)
    assert after <= set().union(*seen)
