"""ASGI entry point: HTTP through Django, WebSockets through Channels.

WebSockets are authenticated by the Django session and refused unless their Origin is one
of ALLOWED_HOSTS, so another site cannot open a creator's dashboard socket. Deliveries from
machines (TikTok's webhooks, under ``DELIVERY_PATH_PREFIXES``) go through Django without the
browser's middleware.
"""

import os

from django.core.asgi import get_asgi_application
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.exception import convert_exception_to_response

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "creatorflow.settings")
django_asgi_app = get_asgi_application()


class DeliveryHandler(ASGIHandler):
    """Django for deliveries from machines: URL routing and views, no middleware.

    A webhook is authenticated by its signature and answered in JSON: it has no session, user,
    CSRF token, messages or htmx headers, and no page to frame or sniff. Under ASGI each of the
    browser's middlewares costs thread hops on every request (Django's ``MiddlewareMixin`` runs
    its hooks through ``sync_to_async``): about a seventh of a server's CPU under closed-loop
    webhook load (bench/README.md). As for pages, a Host not in ``ALLOWED_HOSTS`` is refused (400), errors are
    answered and logged by Django's exception handling, and answers carry their length, as
    ``CommonMiddleware`` gives the pages' (no chunked encoding).
    """

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
