"""CreatorFlow's routes, plus /bench/floor/ (bench.floor) for the benchmark servers only."""

from django.urls import path

from creatorflow.urls import urlpatterns as creatorflow_urlpatterns

from .floor import floor_webhook

urlpatterns = [path("bench/floor/", floor_webhook), *creatorflow_urlpatterns]
