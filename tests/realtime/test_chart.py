"""The orders chart remembers the SVG of bars it drew, and still draws every count as it is now."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from orders.events import OrderEvent, OrderLine
from orders.services import order_apply_event
from realtime.fragments import ORDERS_CHART, fragments_render

pytestmark = pytest.mark.django_db

BAR = re.compile(r'<rect class="chart-bar[^"]*"[^>]*data-count="(\d+)"><title>([^<]*)</title></rect>')


def _bars(creator) -> list[tuple[str, str]]:
    return BAR.findall(fragments_render(creator_id=creator.pk, names=[ORDERS_CHART])[ORDERS_CHART])


def test_each_push_of_the_chart_shows_the_current_hours_new_count(creator, shop, make_product):
    product = make_product(creator, stock=100)
    hour = timezone.now().replace(minute=0, second=0, microsecond=0)
    before = _bars(creator)
    assert len(before) == 24 and before[-1][0] == "0"
    for number in range(1, 4):
        now = timezone.now()
        order_apply_event(
            shop=shop,
            event=OrderEvent(
                order_id=f"CH-{number}", status="AWAITING_SHIPMENT", updated_at=now, placed_at=now,
                total_amount=Decimal("5.00"), lines=[OrderLine(product.external_id, 1, Decimal("5.00"))],
            ),
        )
        after = _bars(creator)
        if timezone.now() >= hour + timedelta(hours=1):
            pytest.skip("the hour turned during the test: the chart moved on by one bar")
        assert after[-1][0] == str(number)
        assert after[-1][1].endswith(f"{number} order{'' if number == 1 else 's'}")
        assert after[:-1] == before[:-1]  # the past hours' bars, drawn again from memory, unchanged
