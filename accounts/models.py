"""Creators: the sellers who log in to CreatorFlow."""

import zoneinfo
from functools import cached_property

from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import models


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not a known time zone (e.g. Europe/Berlin).")


class Creator(AbstractUser):
    """A TikTok Shop seller; sees and receives only their own data."""

    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])

    class Meta:
        verbose_name = "creator"
        verbose_name_plural = "creators"

    @cached_property
    def tzinfo(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)
