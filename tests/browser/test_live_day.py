"""The LIVE day in a real Chromium: a LIVE session through a flash sale, a phone, a lost connection, a failed action."""

import subprocess
import sys

import pytest
from django.conf import settings
from django.utils import timezone
from playwright.sync_api import expect

from inventory.models import InventoryAlert
from realtime.live.services import live_start
from realtime.models import LiveSession

from .conftest import ARTIFACTS, log_in
from .test_dashboard import PATIENT_MS, _sale_in_progress, connection_state, open_dashboard

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}


def _flash_sale(server, shop, *, orders: int, rate: int, live: bool = False) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", "simulate_flash_sale", "--url", f"{server.url}/webhooks/tiktok/",
         "--shop-id", shop.shop_id, "--orders", str(orders), "--rate", str(rate), "--seed", "11",
         *(["--live"] if live else [])],
        cwd=settings.BASE_DIR, env=server.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def _finish(sale: subprocess.Popen) -> str:
    try:
        output, _ = sale.communicate(timeout=120)
    finally:
        if sale.poll() is None:
            sale.kill()
            sale.wait()
    assert sale.returncode == 0, output
    return output


def _off_screen(page, selector: str, *, expected: int) -> list[str]:
    """Return the elements matching ``selector`` that are hidden or cross the screen's sides."""
    found = page.evaluate(
        """(selector) => [...document.querySelectorAll(selector)].map((element) => {
            const box = element.getBoundingClientRect();
            const shown = box.width > 0 && box.height > 0;
            return shown && box.left >= 0 && box.right <= window.innerWidth ? null : element.outerHTML.slice(0, 160);
        })""",
        selector,
    )
    assert len(found) == expected, f"{len(found)} elements match {selector}, expected {expected}"
    return [element for element in found if element is not None]


def _number(page, selector: str) -> float:
    return float(page.locator(selector).inner_text().replace(",", "").split()[0])


def test_a_live_session_through_a_flash_sale(page, browser_context, server, creator, shop, make_product):
    products = [
        make_product(creator, stock=stock, reorder_point=5, unit_cost="6.00", external_id=f"LV-{n}", name=f"Live lip oil {n}")
        for n, stock in enumerate((400, 400, 6))
    ]
    open_dashboard(page, browser_context, server, creator)
    header = page.locator("#live-header")
    expect(header).to_have_attribute("data-live", "idle")

    page.fill("#live-title-input", "Spring drop")
    page.get_by_role("button", name="Start LIVE").click()

    expect(header).to_have_attribute("data-live", "running", timeout=PATIENT_MS)
    expect(header).to_contain_text("Spring drop")
    expect(header.locator('[data-live="orders"]')).to_have_text("0")
    expect(page.locator("#inventory-table th", has_text="Sold this LIVE")).to_be_visible()
    page.evaluate("window.sameDocument = true")

    sale = _flash_sale(server, shop, orders=40, rate=20)
    try:
        # GMV moves while the sale still runs (40 orders at 20/s last 2 s at least).
        first_gmv = page.wait_for_function(
            "() => { const n = parseFloat(document.querySelector('#live-header [data-live=gmv]').textContent.replace(/,/g, ''));"
            " return n > 0 ? n : null; }",
            timeout=PATIENT_MS,
        ).json_value()
    finally:
        _finish(sale)

    expect(header.locator('[data-live="orders"]')).to_have_text("40", timeout=PATIENT_MS)
    session = LiveSession.objects.get(creator=creator)
    assert 0 < first_gmv < _number(page, '#live-header [data-live="gmv"]')
    bars = header.locator("rect.chart-bar:not(.chart-bar-empty)")
    assert bars.count() >= 1
    assert sum(int(bars.nth(index).get_attribute("data-count")) for index in range(bars.count())) == 40
    short_orders = int(page.locator('#live-header [data-live="short_orders"]').inner_text())
    assert short_orders > 0  # the 6-unit product runs short
    expect(page.locator("#card-short-orders .card-value")).to_have_text(str(short_orders))
    sold = page.locator(f'#product-{products[0].pk} [data-field="live_sold"]').inner_text()
    assert int(sold) > 0

    for file_name, options in (
        ("live-desktop.png", {"viewport": {"width": 1440, "height": 1000}, "color_scheme": "light"}),
        ("live-dark.png", {"viewport": {"width": 1440, "height": 1000}, "color_scheme": "dark"}),
        ("live-phone.png", {"viewport": PHONE, "color_scheme": "light"}),
    ):
        shot = page.context.browser.new_context(base_url=server.url, **options)
        try:
            shot_page = shot.new_page()
            open_dashboard(shot_page, shot, server, creator)
            expect(shot_page.locator("#live-header")).to_have_attribute("data-live", "running")
            ARTIFACTS.mkdir(exist_ok=True)
            shot_page.screenshot(path=str(ARTIFACTS / file_name), full_page=True)
            if options["viewport"] == PHONE:  # full pages of a phone are too long to look at: screens too
                shot_page.screenshot(path=str(ARTIFACTS / "live-phone-screen-1.png"))
                for number, fragment in ((2, "#metric-cards"), (3, "#inventory-table"), (4, "#recent-orders")):
                    shot_page.locator(fragment).scroll_into_view_if_needed()
                    shot_page.evaluate(f"document.querySelector('{fragment}').scrollIntoView()")
                    shot_page.screenshot(path=str(ARTIFACTS / f"live-phone-screen-{number}.png"))
        finally:
            shot.close()

    page.get_by_role("button", name="End LIVE").click()

    expect(header).to_have_attribute("data-live", "idle", timeout=PATIENT_MS)
    past = page.locator(f"#live-{session.pk}")
    expect(past).to_contain_text("Spring drop")
    expect(past.locator('[data-label="Orders"]')).to_have_text("40")
    assert page.evaluate("window.sameDocument") is True


def test_the_phone_layout_has_no_sideways_scroll_and_shows_every_available(chromium, server, creator, shop, make_product):
    products = _sale_in_progress(creator, shop, make_product)
    live_start(creator_id=creator.pk, title="Phone LIVE")
    context = chromium.new_context(base_url=server.url, viewport=PHONE)
    try:
        page = context.new_page()
        open_dashboard(page, context, server, creator)
        assert page.evaluate("document.scrollingElement.scrollWidth") <= PHONE["width"]
        for product in products:
            expect(page.locator(f'#product-{product.pk} [data-field="available"]')).to_be_visible()
        # Measured in one pass in the page: a push may swap a row between two Playwright calls.
        available = ", ".join(f'#product-{product.pk} [data-field="available"]' for product in products)
        assert _off_screen(page, available, expected=len(products)) == []
        rows = page.locator("#recent-orders tbody tr").count()
        assert rows > 0
        assert _off_screen(page, '#recent-orders tbody tr [data-field="total"]', expected=rows) == []
        assert _off_screen(page, "#recent-orders tbody tr .badge-status", expected=rows) == []
        page.goto("/orders/")
        assert page.evaluate("document.scrollingElement.scrollWidth") <= PHONE["width"]
    finally:
        context.close()


def test_disconnected_marks_the_data_stale_and_pauses_actions_until_live_again(page, browser_context, server, creator, make_product):
    make_product(creator, stock=2, reorder_point=10, name="Scarce serum")
    alert = InventoryAlert.objects.get(creator=creator, status="active")
    open_dashboard(page, browser_context, server, creator)
    acknowledge = page.locator(f"#alert-{alert.pk}").get_by_role("button", name="Acknowledge")
    start = page.get_by_role("button", name="Start LIVE")
    expect(page.locator("#stale-note")).to_be_hidden()

    server.stop()
    try:
        expect(connection_state(page)).to_have_attribute("data-state", "disconnected", timeout=PATIENT_MS)
        expect(page.locator("#stale-note")).to_be_visible()
        expect(page.locator("#stale-note")).to_contain_text("last updated")
        assert ":" in page.locator("#stale-since").inner_text()  # hh:mm:ss
        expect(page.locator("#dashboard")).to_have_attribute("data-connection", "disconnected")
        for button in (acknowledge, start):
            expect(button).to_be_disabled()
            assert "Paused while disconnected" in button.get_attribute("title")
    finally:
        server.start()

    expect(connection_state(page)).to_have_attribute("data-state", "live", timeout=PATIENT_MS)
    expect(page.locator("#stale-note")).to_be_hidden()
    expect(acknowledge).to_be_enabled()
    expect(start).to_be_enabled()


def test_a_failed_action_says_so(page, browser_context, server, creator):
    open_dashboard(page, browser_context, server, creator)
    # Written straight to the table, so no push takes the Start button away: the click meets the 409.
    LiveSession.objects.create(creator=creator, started_at=timezone.now())

    page.get_by_role("button", name="Start LIVE").click()

    expect(page.locator("#action-status")).to_be_visible(timeout=PATIENT_MS)
    expect(page.locator("#action-status")).to_contain_text("Not done")
    expect(page.locator("#action-status")).to_contain_text("already running")


def test_a_new_seller_sees_how_to_connect_a_shop(page, browser_context, server, make_creator):
    newcomer = make_creator("newcomer")
    log_in(browser_context, server, newcomer)
    page.goto("/")
    onboarding = page.locator("#onboarding")
    expect(onboarding).to_be_visible()
    expect(page.locator("#onboarding-webhook-url")).to_have_text(f"{server.url}/webhooks/tiktok/")
    expect(onboarding.get_by_role("button", name="Copy")).to_be_visible()
    expect(onboarding).to_contain_text("HMAC-SHA256")
    expect(page.locator("#onboarding-test-order")).to_contain_text("simulate_flash_sale")
