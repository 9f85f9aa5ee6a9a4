"""Settings for the benchmark servers: CreatorFlow's own, plus the bare-Django floor route."""

from creatorflow.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
