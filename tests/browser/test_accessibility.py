"""Accessibility basics of the console's main pages, checked with axe-core (vendored
from its npm package: tests/browser/vendor/axe.min.js, MPL-2.0) for WCAG 2 A/AA rules
(labels, contrast, names, landmarks), and keyboard-only sign-in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.demo.sharing import DEMO_PASSWORD
from tests.browser.conftest import Console

AXE = (Path(__file__).parent / "vendor" / "axe.min.js").read_text("utf-8")

PAGES = [
    ("zhang.wei", ["catalog", "sql", "apply", "mine", "verify"]),
    ("li.qiang", ["inbox", "policy", "audit", "stats"]),
    ("zhao.min", ["all", "stats"]),
    ("qian.hui", ["audit", "checkpoints"]),
    ("admin", ["accounts", "me"]),
]


def _violations(page: Any) -> list[str]:
    # Injected through the DevTools protocol (page.evaluate), not a <script>: the
    # console's CSP rightly refuses inline scripts, and the checker is the test's.
    page.evaluate(AXE)
    found = page.evaluate(
        """async () => (await axe.run(document, {runOnly: {type: 'tag',
            values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})).violations
            .map((v) => `${v.id}: ${v.help} (${v.nodes.length}) ${v.nodes[0].target}`)"""
    )
    return list(found)


@pytest.mark.parametrize(("username", "pages"), PAGES)
def test_main_pages_have_no_axe_violations(
    console: Console, username: str, pages: list[str]
) -> None:
    console.start()
    assert _violations(console.page) == []  # the sign-in page
    console.login(username)
    for name in pages:
        console.open(name)
        console.page.wait_for_load_state("networkidle")
        assert _violations(console.page) == [], name


def test_sign_in_with_the_keyboard_alone(console: Console) -> None:
    page = console.page
    console.start()
    # The skip link is the first thing the keyboard reaches.
    first = page.evaluate("document.querySelector('a[href], button, input, select').className")
    assert first == "skip"
    page.get_by_label(console.word("用户名", "Username")).focus()
    page.keyboard.type("zhao.min")
    page.keyboard.press("Tab")
    page.keyboard.type(DEMO_PASSWORD)
    page.keyboard.press("Enter")
    page.get_by_role("button", name=console.word("退出", "Log out")).wait_for()
    # Focus is visible: the stylesheet draws an outline on keyboard focus.
    page.keyboard.press("Tab")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("", "none")
