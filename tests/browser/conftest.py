"""Real headless Chromium against the live server (``kasagi_server``).

Debian's ``/usr/bin/chromium`` driven by Playwright for Python; never a
downloaded browser (the machine is offline). Without it the tests skip, or
fail under ``KASAGI_REQUIRE_SERVICES=1`` like the other service-backed tests.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.live import LiveServer

CHROMIUM = Path(os.environ.get("KASAGI_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
DESKTOP = {"width": 1280, "height": 900}
WAIT_MS = 20_000  # a busy 2-core machine: generous, never a timing assertion


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    """One headless Chromium per test module.

    Not per session: Playwright's sync API keeps its event loop marked as
    running in this thread while it is started, which would break the
    asyncio tests of the modules that follow.
    """
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing (apt-get install chromium)"
        if os.environ.get("KASAGI_REQUIRE_SERVICES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@dataclass
class Browsing:
    """Pages of one browser profile (one cookie jar) on the live server.

    Every page's console errors and uncaught exceptions are collected: a
    test fails if a page had any (``check_clean``).
    """

    server: LiveServer
    context: object
    #: console messages that are expected (e.g. failed reconnects while a server is down)
    tolerate: tuple[str, ...] = ()
    problems: list[str] = field(default_factory=list)

    def page(self, path: str = "/") -> object:
        page = self.context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.on("pageerror", lambda error: self.problems.append(f"{path}: {error}"))
        page.on("console", lambda msg: self._console(path, msg))
        page.goto(self.server.http_url + path)
        return page

    def room(self, room_id: str, query: str = "") -> object:
        """A room page, once its client has joined (a player, or a spectator)."""
        page = self.page(f"/rooms/{room_id}/{query}")
        wait_joined(page)
        return page

    def login(self, username: str, password: str) -> None:
        page = self.page("/accounts/login/?next=/")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", password)
        page.click("form [type=submit]")
        page.wait_for_url(self.server.http_url + "/")
        page.close()

    def _console(self, path: str, msg: object) -> None:
        if msg.type == "error" and not any(part in msg.text for part in self.tolerate):
            self.problems.append(f"{path}: {msg.text}")

    def check_clean(self) -> None:
        assert not self.problems, "browser errors:\n" + "\n".join(self.problems)


def wait_joined(page: object) -> None:
    page.wait_for_function(
        "() => window.kasagiDemo && window.kasagiDemo.client.version !== null",
        timeout=WAIT_MS,
    )


@pytest.fixture
def browse(chromium: object, kasagi_server: LiveServer) -> Iterator[Callable[..., Browsing]]:
    """``browse(viewport=..., server=..., tolerate=...)``: a fresh browser profile.

    On ``kasagi_server`` unless another server is given; closed after the test.
    """
    opened: list[Browsing] = []

    def open_profile(
        viewport: dict[str, int] | None = None, server: LiveServer | None = None,
        tolerate: tuple[str, ...] = (),
    ) -> Browsing:
        context = chromium.new_context(viewport=viewport or DESKTOP)
        browsing = Browsing(server or kasagi_server, context, tolerate)
        opened.append(browsing)
        return browsing

    yield open_profile
    for browsing in opened:
        browsing.context.close()
    for browsing in opened:
        browsing.check_clean()
