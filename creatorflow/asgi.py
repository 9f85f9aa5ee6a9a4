"""ASGI entry point: HTTP through Django, WebSockets through Channels.

WebSockets are authenticated by the Django session and refused unless their Origin is one
of ALLOWED_HOSTS, so another site cannot open a creator's dashboard socket.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "creatorflow.settings")
django_asgi_app = get_asgi_application()

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
    return await router(scope, receive, send)


if settings.CREATORFLOW["EXPIRE_IN_PROCESS"]:
    expiry_timer_start()
