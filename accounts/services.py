"""Creators: create or update a seller's login."""

from django.core.exceptions import ValidationError
from django.db import transaction

from .models import Creator, validate_timezone


class CreatorError(ValueError):
    """A creator that cannot be saved as asked; nothing was written."""


@transaction.atomic
def creator_upsert(*, username: str, password: str | None = None, timezone_name: str | None = None) -> tuple[Creator, bool]:
    """Create or update the creator called ``username``; return (creator, created).

    Without a password a new creator gets an unusable one (no login until one is set).
    """
    if not username or not username.strip():
        raise CreatorError("username must not be empty.")
    if timezone_name is not None:
        try:
            validate_timezone(timezone_name)
        except ValidationError as error:
            raise CreatorError(error.messages[0]) from error
    creator, created = Creator.objects.get_or_create(username=username)
    if password:
        creator.set_password(password)
    elif not creator.password:  # A new creator: "" would count as usable, yet match no password.
        creator.set_unusable_password()
    if timezone_name is not None:
        creator.timezone = timezone_name
    creator.save()
    return creator, created
