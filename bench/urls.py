"""CreatorFlow's routes, plus the floor (bench.floor) for the benchmark servers only.

``/bench/floor/`` is served as the webhooks are (no middleware, ``bench/settings.py``);
``/bench/floor-pages/`` is the same view through the pages' middleware, as the floor was until 2026-12-03.
"""

from django.urls import path

from creatorflow.urls import urlpatterns as creatorflow_urlpatterns

from .floor import floor_webhook

urlpatterns = [path("bench/floor/", floor_webhook), path("bench/floor-pages/", floor_webhook), *creatorflow_urlpatterns]
