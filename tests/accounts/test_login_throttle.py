"""Password guessing is throttled per account and per client address (django-axes), the password never logged."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.test import Client
from django.utils import timezone

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"
RIGHT = "right-password-1"


def _sign_in(username: str, password: str, *, address: str = "203.0.113.7"):
    client = Client(REMOTE_ADDR=address)
    return client, client.post(LOGIN, {"username": username, "password": password})


def _signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_the_nth_wrong_password_locks_the_account_for_the_stated_time_while_others_sign_in(make_creator, every_log):
    make_creator("maya", password=RIGHT)
    make_creator("omar", password=RIGHT)
    limit = settings.AXES_FAILURE_LIMIT

    answers = [_sign_in("maya", f"guess-{n}-Qv")[1] for n in range(limit)]

    assert [answer.status_code for answer in answers] == [200] * (limit - 1) + [429]
    assert "Sign-in is locked for 15 minutes" in answers[-1].content.decode()
    assert "Sign-in is locked" not in answers[0].content.decode()
    # Even the right password, from another address, is refused while the account is locked.
    client, answer = _sign_in("maya", RIGHT, address="198.51.100.1")
    assert answer.status_code == 429 and not _signed_in(client)
    # Another seller, elsewhere, signs in as usual.
    client, answer = _sign_in("omar", RIGHT, address="198.51.100.2")
    assert answer.status_code == 302 and _signed_in(client)
    # No guess is logged or stored.
    stored = list(AccessAttempt.objects.values_list("post_data", flat=True))
    for n in range(limit):
        assert not any(f"guess-{n}-Qv" in text for text in [*every_log, *stored])
    assert any("Locking out" in line for line in every_log)

    # The stated time later, the account signs in again.
    AccessAttempt.objects.update(attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=1))
    client, answer = _sign_in("maya", RIGHT, address="198.51.100.1")
    assert answer.status_code == 302 and _signed_in(client)


def test_one_address_guessing_across_accounts_is_locked(make_creator):
    make_creator("omar", password=RIGHT)
    for n in range(settings.AXES_FAILURE_LIMIT):
        _sign_in(f"someone-{n}", "guess", address="192.0.2.50")

    client, answer = _sign_in("omar", RIGHT, address="192.0.2.50")
    assert answer.status_code == 429 and not _signed_in(client)
    client, answer = _sign_in("omar", RIGHT, address="192.0.2.51")
    assert answer.status_code == 302 and _signed_in(client)


def test_the_admin_sign_in_is_throttled_too(make_creator):
    make_creator("boss", password=RIGHT, is_staff=True, is_superuser=True)
    client = Client(REMOTE_ADDR="192.0.2.60")
    for n in range(settings.AXES_FAILURE_LIMIT):
        answer = client.post("/admin/login/", {"username": "boss", "password": f"guess-{n}"})
    assert answer.status_code == 429
    assert client.post("/admin/login/", {"username": "boss", "password": RIGHT}).status_code == 429
