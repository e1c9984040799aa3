"""The door in a real browser, on a phone: a code typed (or sent by a handheld scanner) is
checked in by HTMX without a reload; where the browser can read QR codes (BarcodeDetector)
the camera button appears and a code it reads is checked in by itself; without JavaScript
the plain form does the same. The organizer's pages pass axe.

Chromium on Linux has no BarcodeDetector and the test machine no camera, so the camera test
stands in for both with the same interfaces (an init script), as a browser that has them.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.pages import PHONE, sign_in
from tests.support.seeding import (
    event_words,
    new_person,
    seed,
    ticket_words,
    unique,
    user_words,
)

pytestmark = pytest.mark.browser


FAKE_CAMERA_AND_DETECTOR = """
(() => {
  window.__codesToShow = [];
  class FakeBarcodeDetector {
    static getSupportedFormats() { return Promise.resolve(["qr_code", "ean_13"]); }
    constructor(options) { window.__detectorFormats = options.formats; }
    detect(source) {
      const code = window.__codesToShow.length ? window.__codesToShow.shift() : null;
      return Promise.resolve(code ? [{ rawValue: code, format: "qr_code" }] : []);
    }
  }
  window.BarcodeDetector = FakeBarcodeDetector;
  navigator.mediaDevices.getUserMedia = (constraints) => {
    window.__cameraAsked = constraints;
    const canvas = document.createElement("canvas");
    canvas.width = 320; canvas.height = 240;
    const ctx = canvas.getContext("2d");
    setInterval(() => {
      ctx.fillStyle = "#" + Math.floor(Math.random() * 999);
      ctx.fillRect(0, 0, 320, 240);
    }, 50);
    return Promise.resolve(canvas.captureStream(10));
  };
})();
"""


def door_setup(server, tickets: int = 3) -> tuple[int, list[str], object]:
    """An event tomorrow with ``tickets`` tickets sold; returns its id, the tokens, and the
    organizer (who can sign in)."""
    organizer = new_person("organizer")
    fans = [new_person("fan") for _ in range(tickets)]
    made = seed(server, *user_words(organizer), *event_words(
        organizer, name=unique("Door Gig "), description="Doors at seven.",
        location="Camden, London", capacity=10))
    event_id = int(made[-1])
    words = [w for fan in fans for w in user_words(fan)]
    words += [w for fan in fans for w in ticket_words(event_id, fan)]
    sold = seed(server, *words)[len(fans):]  # "<ticket id> <token>" per fan
    return event_id, [line.split()[1] for line in sold], organizer


def door(server, new_context, organizer, event_id: int, *, javascript: bool = True,
         init_script: str | None = None) -> Page:
    context = new_context(viewport=PHONE, java_script_enabled=javascript)
    if init_script:
        context.add_init_script(init_script)
    page = context.new_page()
    sign_in(page, server.url, organizer)
    page.goto(f"{server.url}/seller/events/{event_id}/checkin")
    return page


def result(page: Page):
    return page.locator("#checkin-result")


def test_a_typed_code_is_checked_in_without_a_reload(live_server, new_context, screenshot):
    event_id, tokens, organizer = door_setup(live_server)
    page = door(live_server, new_context, organizer, event_id)
    expect(page.locator("#checkin-count")).to_have_text("0 of 3 checked in")
    # Chromium on Linux can't read QR codes itself: no camera button.
    expect(page.get_by_role("button", name="Scan with camera")).to_be_hidden()
    field = page.get_by_label("Ticket code")
    expect(field).to_be_focused()
    page.evaluate("window.__sameDocument = true")

    field.fill(tokens[0])
    field.press("Enter")  # what a handheld scanner does after typing the code
    expect(result(page)).to_have_attribute("data-outcome", "admitted")
    expect(result(page)).to_contain_text("Admitted")
    expect(page.locator("#checkin-count")).to_have_text("1 of 3 checked in")
    expect(field).to_have_value("")
    expect(field).to_be_focused()
    assert page.evaluate("window.__sameDocument") is True, "the page was reloaded"
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot(page, "checkin-360x740-admitted")

    field.fill(tokens[0])
    page.get_by_role("button", name="Check in").click()
    expect(result(page)).to_have_attribute("data-outcome", "already_used")
    expect(result(page)).to_contain_text("Checked in")
    screenshot(page, "checkin-360x740-already-used")

    field.fill(tokens[1][:-3])
    field.press("Enter")
    expect(result(page)).to_have_attribute("data-outcome", "invalid")
    screenshot(page, "checkin-360x740-invalid")

    # An empty field is refused by the browser itself (required) and, if sent, by the server.
    page.evaluate("document.getElementById('checkin-form').noValidate = true")
    field.fill("")
    field.press("Enter")
    expect(result(page)).to_contain_text("Enter or scan a ticket code.")
    expect(result(page)).not_to_have_attribute("data-outcome", "invalid")
    assert page.evaluate("window.__sameDocument") is True


def test_the_camera_reads_a_code_and_checks_it_in(live_server, new_context):
    event_id, tokens, organizer = door_setup(live_server, tickets=2)
    page = door(live_server, new_context, organizer, event_id,
                init_script=FAKE_CAMERA_AND_DETECTOR)
    scan = page.get_by_role("button", name="Scan with camera")
    expect(scan).to_be_visible()
    scan.click()
    expect(page.locator("#scanner-video")).to_be_visible()
    expect(page.locator("#scanner-status")).to_have_text(
        "Point the camera at the ticket's QR code.")
    assert page.evaluate("window.__cameraAsked.video.facingMode") == "environment"
    assert page.evaluate("window.__detectorFormats") == ["qr_code"]

    page.evaluate("codes => window.__codesToShow.push(...codes)", [tokens[0]])
    expect(result(page)).to_have_attribute("data-outcome", "admitted")
    expect(page.locator("#checkin-count")).to_have_text("1 of 2 checked in")

    # The same code held in front of the camera is sent once, not again and again.
    page.evaluate("codes => window.__codesToShow.push(...codes)", [tokens[0], tokens[0]])
    page.wait_for_timeout(1_500)
    expect(result(page)).to_have_attribute("data-outcome", "admitted")

    page.evaluate("codes => window.__codesToShow.push(...codes)", [tokens[1]])
    expect(page.locator("#checkin-count")).to_have_text("2 of 2 checked in")

    page.get_by_role("button", name="Stop camera").click()
    expect(page.locator("#scanner-video")).to_be_hidden()
    expect(scan).to_be_visible()
    assert page.evaluate("document.getElementById('scanner-video').srcObject") is None


def test_without_javascript_the_plain_form_checks_in(live_server, new_context):
    event_id, tokens, organizer = door_setup(live_server, tickets=1)
    page = door(live_server, new_context, organizer, event_id, javascript=False)
    expect(page.get_by_role("button", name="Scan with camera")).to_be_hidden()
    page.get_by_label("Ticket code").fill(tokens[0])
    page.get_by_role("button", name="Check in").click()
    expect(result(page)).to_have_attribute("data-outcome", "admitted")
    expect(page.locator("#checkin-count")).to_have_text("1 of 1 checked in")


def test_the_organizers_pages_have_no_serious_accessibility_violations(
        live_server, new_context, run_axe, screenshot):
    event_id, tokens, organizer = door_setup(live_server, tickets=2)
    page = door(live_server, new_context, organizer, event_id)
    found = {"check-in": run_axe(page)}
    page.get_by_label("Ticket code").fill(tokens[0])
    page.get_by_label("Ticket code").press("Enter")
    expect(result(page)).to_have_attribute("data-outcome", "admitted")
    found["check-in, admitted"] = run_axe(page)
    page.get_by_label("Ticket code").fill("nonsense")
    page.get_by_label("Ticket code").press("Enter")
    expect(result(page)).to_have_attribute("data-outcome", "invalid")
    found["check-in, refused"] = run_axe(page)
    page.goto(f"{live_server.url}/seller")
    found["dashboard"] = run_axe(page)
    screenshot(page, "seller-dashboard-360x740")
    # The wide figures table scrolls inside its own box; the page itself fits the phone.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.goto(f"{live_server.url}/seller/events/{event_id}")
    expect(page.locator("#sales-chart")).to_be_visible()
    found["event figures and chart"] = run_axe(page)
    screenshot(page, "seller-event-360x740")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert {label: v for label, v in found.items() if v} == {}
