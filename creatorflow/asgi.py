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

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)

if settings.CREATORFLOW["EXPIRE_IN_PROCESS"]:
    expiry_timer_start()
