from django.apps import AppConfig


class DemoConfig(AppConfig):
    """A demo seller to look around with; above every other app, since it drives them all."""

    name = "demo"
    verbose_name = "Demo data"
