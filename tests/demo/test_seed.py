import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from inventory.models import Product, Stock, StockMovement
from orders.models import Order, ShopConnection

pytestmark = pytest.mark.django_db


def test_demo_seed_creates_a_creator_with_products_stock_and_orders(capsys):
    call_command("demo_seed")
    creator = get_user_model().objects.get(username="demo")
    assert creator.check_password("creatorflow-demo")
    assert ShopConnection.objects.filter(creator=creator).count() == 1
    assert Product.objects.filter(creator=creator).count() == 6
    assert Order.objects.filter(creator=creator).count() == 40
    assert "as demo / creatorflow-demo" in capsys.readouterr().out
    for stock in Stock.objects.all():
        movements = StockMovement.objects.filter(stock=stock)
        assert sum(m.on_hand_delta for m in movements) == stock.on_hand
        assert sum(m.reserved_delta for m in movements) == stock.reserved


def test_demo_seed_if_empty_leaves_an_existing_database_alone(capsys, make_creator):
    make_creator("someone")
    call_command("demo_seed", "--if-empty")
    assert not get_user_model().objects.filter(username="demo").exists()
    assert "skipped" in capsys.readouterr().out


def test_demo_seed_twice_does_not_duplicate():
    call_command("demo_seed")
    call_command("demo_seed")
    assert Order.objects.count() == 40
    assert Product.objects.count() == 6
