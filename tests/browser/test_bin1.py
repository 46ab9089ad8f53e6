"""The demo in headless Chromium speaks kasagi.bin1 (the JS client offers it by
default), and its panel shows the codec's rate next to what JSON would have cost."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


def test_the_demo_page_speaks_bin1_and_shows_what_json_would_cost(browse, room_id):
    profile = browse()
    page1, page2 = profile.room(room_id), profile.room(room_id)
    assert page1.evaluate("() => window.kasagiDemo.client.stats.codec") == "bin1"
    other = page2.evaluate("() => window.kasagiDemo.client.playerId")
    page1.wait_for_function(
        "(id) => !!window.kasagiDemo.client.state?.players?.[id]", arg=other)
    box = page2.locator("#arena").bounding_box()
    page2.mouse.move(box["x"] + box["width"] * 0.7, box["y"] + box["height"] * 0.6)
    page1.wait_for_function(
        "() => /bin1 \\(JSON: .*\\/s, \\d+%\\)/.test("
        "document.getElementById('fact-rate').textContent)", timeout=15000)
    stats = page1.evaluate("() => window.kasagiDemo.client.stats.toJSON()")
    assert stats["jsonBytesReceived"] > stats["bytesReceived"] > 0
    assert stats["gaps"] == 0
