"""Browser tests of the web console: headless Chromium (Debian's ``chromium`` package,
never a browser downloaded by Playwright) driven by Playwright for Python, against a
real ``gateway serve`` process seeded with the demo's people and applications.

Without chromium or Playwright the tests skip with the reason, unless
GATEWAY_REQUIRE_SERVICES=1 (CI), which turns the skip into a failure. Screenshots go to
``tests/browser/screenshots/`` (git-ignored).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.demo.sharing import DEMO_PASSWORD, ensure_demo_sharing
from gateway.settings import Settings
from tests.conftest import ROOT
from tests.e2e.harness import demo_dsn
from tests.e2e.processes import GatewayProcess, free_port

SCREENSHOTS = ROOT / "tests" / "browser" / "screenshots"


def _unavailable(reason: str) -> None:
    if os.environ.get("GATEWAY_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason}; GATEWAY_REQUIRE_SERVICES=1 forbids skipping", pytrace=False)
    pytest.skip(reason)


def chromium_path() -> str:
    found = os.environ.get("GATEWAY_CHROMIUM") or shutil.which("chromium")
    if not found:
        _unavailable("chromium is not installed (apt-get install -y chromium fonts-wqy-microhei)")
    return str(found)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    executable = chromium_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Playwright for Python is not installed (pip install -e '.[dev]')")
    with sync_playwright() as pw:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
        launched = pw.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


def start_console_gateway(tmp: Path, **extra_env: str) -> GatewayProcess:
    port = free_port()
    env = {
        "GATEWAY_POLICY_DIR": str(ROOT / "policies"),
        "GATEWAY_KEY_DIR": str(ROOT / "keys" / "demo"),
        "GATEWAY_STATE_DIR": str(tmp / "state"),
        "GATEWAY_ISSUER": f"http://127.0.0.1:{port}",
        "GATEWAY_BACKEND_DEMO_DSN": demo_dsn("sqlite", tmp),
        "GATEWAY_REPLAY_DSN": "memory:",
        "GATEWAY_LOG_LEVEL": "WARNING",
        **extra_env,
    }
    (tmp / "state").mkdir(parents=True, exist_ok=True)
    ensure_demo_sharing(Settings.from_env(env), now=datetime.now(UTC))
    process = GatewayProcess(port, env, tmp / "gateway.log")
    process.start()
    return process


@pytest.fixture(scope="session")
def console_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    process = start_console_gateway(tmp_path_factory.mktemp("console"))
    try:
        yield process.url
    finally:
        process.stop()


@dataclass
class Console:
    """One browser context (its own cookies) on the console, in one language."""

    page: Any
    url: str
    language: str

    def word(self, zh: str, en: str) -> str:
        return zh if self.language == "zh-CN" else en

    def start(self) -> None:
        """The sign-in page, in this console's language."""
        self.page.goto(f"{self.url}/console")
        self.page.locator("#lang").wait_for()
        if self.language == "en" and self.page.evaluate("document.documentElement.lang") != "en":
            self.page.get_by_role("button", name="English").click()
        self.page.get_by_label(self.word("用户名", "Username")).wait_for()

    def login(self, username: str, password: str = DEMO_PASSWORD) -> None:
        self.start()
        self.page.get_by_label(self.word("用户名", "Username")).fill(username)
        self.page.get_by_label(self.word("密码", "Password"), exact=True).fill(password)
        self.page.get_by_role("button", name=self.word("登录", "Sign in")).click()
        self.page.get_by_role("button", name=self.word("退出", "Log out")).wait_for()

    def open(self, page: str) -> None:
        self.page.goto(f"{self.url}/console#/{page}")
        self.page.wait_for_selector("main section, main .error")
        error = self.page.locator("main .error")
        assert not error.count(), f"#/{page}: {error.first.inner_text()}"

    def shot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}-{self.language}.png"), full_page=True)


@pytest.fixture(params=["zh-CN", "en"])
def console(browser: Any, console_url: str, request: pytest.FixtureRequest) -> Iterator[Console]:
    context = browser.new_context(locale=request.param, accept_downloads=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # Generous: in CI the browser shares two vCPUs with the rest of the suite (15 s
    # timed out there while every page answered within 2 s on a quiet machine).
    page.set_default_timeout(45_000)
    try:
        yield Console(page, console_url, request.param)
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
