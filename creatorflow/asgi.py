"""ASGI entry point: HTTP through Django, WebSockets through Channels.

WebSockets are authenticated by the Django session and refused unless their Origin is one
of ALLOWED_HOSTS, so another site cannot open a creator's dashboard socket. Deliveries from
machines (TikTok's webhooks, under ``DELIVERY_PATH_PREFIXES``) go through Django without the
browser's middleware.
"""

import gc
import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

from asgiref.sync import ThreadSensitiveContext
from django.core.asgi import get_asgi_application
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.exception import convert_exception_to_response

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "creatorflow.settings")
django_asgi_app = get_asgi_application()


class RequestThreads:
    """Threads lent to one request at a time, for the request's synchronous code.

    Django runs a request's synchronous code (signal receivers, sync views, ``sync_to_async``
    calls) on one thread of its own: ``ASGIHandler`` starts a thread for every request, and
    asgiref starts a second one to join the first when the request ends. Here a request borrows
    a single-thread executor that an earlier request has finished with, so its synchronous code
    still runs on one thread, which no other request uses meanwhile, and no thread is started
    per request. Threads are lent on the event loop's thread only; at most ``keep`` wait idle.
    """

    def __init__(self, *, keep: int = 64):
        self._idle: list[ThreadPoolExecutor] = []
        self._keep = keep

    @asynccontextmanager
    async def lent(self):
        executor = self._idle.pop() if self._idle else ThreadPoolExecutor(max_workers=1, thread_name_prefix="delivery")
        try:
            async with ThreadSensitiveContext(executor=executor):
                yield
        finally:
            if len(self._idle) < self._keep:
                self._idle.append(executor)
            else:
                executor.shutdown(wait=False)


class DeliveryHandler(ASGIHandler):
    """Django for deliveries from machines: URL routing and views, no middleware.

    A webhook is authenticated by its signature and answered in JSON: it has no session, user,
    CSRF token, messages or htmx headers, and no page to frame or sniff. Under ASGI each of the
    browser's middlewares costs thread hops on every request (Django's ``MiddlewareMixin`` runs
    its hooks through ``sync_to_async``): about a seventh of a server's CPU under closed-loop
    webhook load (bench/README.md). As for pages, a Host not in ``ALLOWED_HOSTS`` is refused (400), errors are
    answered and logged by Django's exception handling, and answers carry their length, as
    ``CommonMiddleware`` gives the pages' (no chunked encoding). A delivery's synchronous code runs
    on a thread lent by ``RequestThreads`` rather than one started for it.
    """

    def __init__(self):
        super().__init__()
        self._threads = RequestThreads()

    async def __call__(self, scope, receive, send):
        async with self._threads.lent():
            await self.handle(scope, receive, send)

    def load_middleware(self, is_async=False):
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        self._middleware_chain = convert_exception_to_response(self._host_checked)

    async def _host_checked(self, request):
        request.get_host()  # raises DisallowedHost, answered 400
        return await self._get_response_async(request)

    async def get_response_async(self, request):
        response = await super().get_response_async(request)
        if not response.streaming and not response.has_header("Content-Length"):
            response.headers["Content-Length"] = str(len(response.content))
        return response


deliveries_asgi_app = DeliveryHandler()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from django.conf import settings  # noqa: E402

from orders.runtime import expiry_timer_start  # noqa: E402
from realtime.routing import websocket_urlpatterns  # noqa: E402
from realtime.runtime import server_loop_register  # noqa: E402

router = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)


async def application(scope, receive, send):
    """Serve through the router, remembering the server's loop from the first request on.

    Dashboard pushes from this process's threads are sent on that loop, over its channel-layer
    connections; a process serving only webhooks would otherwise start an event loop and a
    Redis connection for every push.
    """
    server_loop_register()
    if scope["type"] == "http" and scope["path"].startswith(settings.DELIVERY_PATH_PREFIXES):
        return await deliveries_asgi_app(scope, receive, send)
    return await router(scope, receive, send)


if settings.CREATORFLOW["EXPIRE_IN_PROCESS"]:
    expiry_timer_start()


def loaded_heap_freeze() -> None:
    """Leave what loading the application allocated out of the garbage collector's full passes.

    Django, the apps, their modules, classes and URL patterns live as long as the process. Each
    full collection went through all of them again, 50–60 ms with the process held (every 16 s at
    150 webhooks a second), and every request in flight waited (bench/README.md). Frozen, they
    are left out, and a full pass looks only at what was allocated since.
    """
    gc.collect()
    gc.freeze()


loaded_heap_freeze()
