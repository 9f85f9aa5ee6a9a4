import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from orders.models import ShopConnection

pytestmark = pytest.mark.django_db


def connect(*args):
    call_command("shop_connect", *args)


def test_shop_connect_creates_creator_and_shop(capsys):
    connect("maya", "--shop-id", "S1", "--app-key", "K", "--app-secret", "secret-1", "--password", "pw-12345",
            "--timezone", "Europe/Berlin")
    creator = get_user_model().objects.get(username="maya")
    assert creator.timezone == "Europe/Berlin"
    assert creator.check_password("pw-12345")
    shop = ShopConnection.objects.get(shop_id="S1")
    assert (shop.creator, shop.app_key, shop.app_secret) == (creator, "K", "secret-1")
    output = capsys.readouterr().out
    assert "Connected shop S1 for creator maya" in output
    assert "secret-1" not in output


def test_shop_connect_updates_keys_in_place():
    connect("maya", "--shop-id", "S1", "--app-key", "K", "--app-secret", "old", "--no-login")
    connect("maya", "--shop-id", "S1", "--app-key", "K2", "--app-secret", "new", "--api-base-url", "http://127.0.0.1:9")
    shop = ShopConnection.objects.get()
    assert (shop.app_key, shop.app_secret, shop.api_base_url) == ("K2", "new", "http://127.0.0.1:9")


def test_shop_connect_refuses_a_shop_of_another_creator():
    connect("maya", "--shop-id", "S1", "--app-key", "K", "--app-secret", "s", "--no-login")
    with pytest.raises(CommandError, match="already connected to another creator"):
        connect("omar", "--shop-id", "S1", "--app-key", "K", "--app-secret", "s", "--no-login")
    assert ShopConnection.objects.get().creator.username == "maya"


def test_shop_connect_refuses_an_unknown_time_zone():
    with pytest.raises(CommandError, match="not a known time zone"):
        connect("maya", "--shop-id", "S1", "--app-key", "K", "--app-secret", "s", "--timezone", "Mars/Olympus",
                "--password", "pw-12345")
    assert not get_user_model().objects.exists()


def test_shop_connect_refuses_a_new_creator_without_password_and_says_how_to_set_one(capsys):
    with pytest.raises(CommandError, match="give --password, or --no-login") as refused:
        connect("maya", "--shop-id", "S1", "--app-key", "K", "--app-secret", "s")
    assert "manage.py changepassword maya" in str(refused.value)
    assert not get_user_model().objects.exists()

    connect("maya", "--shop-id", "S1", "--app-key", "K", "--app-secret", "s", "--no-login")

    assert not get_user_model().objects.get(username="maya").has_usable_password()
    assert "cannot log in yet; set a password with: .venv/bin/python manage.py changepassword maya" in (
        capsys.readouterr().out
    )
    # An existing creator keeps their login; no password is needed to update their shop.
    connect("maya", "--shop-id", "S1", "--app-key", "K2", "--app-secret", "s")
    assert ShopConnection.objects.get().app_key == "K2"


@pytest.mark.parametrize(
    "url", ["not-a-url", "ftp://127.0.0.1/", "http://", "http://127.0.0.1:port/", "https://user:pw@example.com"]
)
def test_shop_connect_refuses_an_api_base_url_that_is_not_an_http_url(url):
    with pytest.raises(CommandError, match="API base URL"):
        connect("maya", "--shop-id", "S1", "--app-key", "K", "--app-secret", "s", "--password", "pw-12345",
                "--api-base-url", url)
    assert not ShopConnection.objects.exists()


def test_shop_connect_sets_the_shops_currency_and_refuses_one_that_is_not_a_code():
    connect("maya", "--shop-id", "S1", "--app-key", "K", "--app-secret", "s", "--no-login", "--currency", " eur ")
    assert ShopConnection.objects.get().currency == "EUR"
    with pytest.raises(CommandError, match="three-letter ISO 4217 code"):
        connect("maya", "--shop-id", "S1", "--app-key", "K2", "--app-secret", "s", "--currency", "euro")
    shop = ShopConnection.objects.get()
    assert (shop.currency, shop.app_key) == ("EUR", "K")  # nothing changed
