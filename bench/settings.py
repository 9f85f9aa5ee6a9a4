"""Settings for the benchmark servers: CreatorFlow's own, plus the bare-Django floor route."""

from creatorflow.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
# The floor is a bare view served as the webhooks are: through Django without the browser's middleware.
DELIVERY_PATH_PREFIXES = (*DELIVERY_PATH_PREFIXES, "/bench/floor/")  # noqa: F405
