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
    connect("maya", "--shop-id", "S1", "--app-key", "K", "--app-secret", "old")
    connect("maya", "--shop-id", "S1", "--app-key", "K2", "--app-secret", "new", "--api-base-url", "http://127.0.0.1:9")
    shop = ShopConnection.objects.get()
    assert (shop.app_key, shop.app_secret, shop.api_base_url) == ("K2", "new", "http://127.0.0.1:9")


def test_shop_connect_refuses_a_shop_of_another_creator():
    connect("maya", "--shop-id", "S1", "--app-key", "K", "--app-secret", "s")
    with pytest.raises(CommandError, match="already connected to another creator"):
        connect("omar", "--shop-id", "S1", "--app-key", "K", "--app-secret", "s")
    assert ShopConnection.objects.get().creator.username == "maya"


def test_shop_connect_refuses_an_unknown_time_zone():
    with pytest.raises(CommandError, match="not a known time zone"):
        connect("maya", "--shop-id", "S1", "--app-key", "K", "--app-secret", "s", "--timezone", "Mars/Olympus")
    assert not get_user_model().objects.exists()
