"""The console's security properties, attacked from a real browser: the CSP (header
present, inline script refused), clickjacking, CSRF, another role's pages and API,
session expiry and logout, no personal data in URLs, no files outside the console's."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.api.console import CSP
from tests.browser.conftest import Console, start_console_gateway


def test_every_console_response_carries_the_csp_and_refuses_framing(console_url: str) -> None:
    for path in ("/console", "/console/static/app.js", "/console/static/pages/consumer.js"):
        resp = httpx.get(console_url + path)
        assert resp.status_code == 200, path
        csp = resp.headers["content-security-policy"]
        assert csp == CSP
        assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
        assert "unsafe-eval" not in csp and "default-src 'self'" in csp
        assert resp.headers["x-frame-options"] == "DENY"
        assert resp.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    "path",
    [
        "/console/static/../../gateway/app.py",
        "/console/static/%2e%2e/%2e%2e/pyproject.toml",
        "/console/static/app.py",
        "/console/static/index.html.bak",
        "/console/static/APP.JS",
    ],
)
def test_only_the_console_files_are_served(console_url: str, path: str) -> None:
    assert httpx.get(console_url + path).status_code == 404


def test_the_browser_refuses_injected_inline_script(console: Console) -> None:
    console.login("zhang.wei")
    page = console.page
    ran = page.evaluate(
        """() => new Promise((resolve) => {
            window.__injected = false;
            document.addEventListener('securitypolicyviolation', () => resolve('blocked'));
            const s = document.createElement('script');
            s.textContent = 'window.__injected = true';
            document.body.append(s);
            setTimeout(() => resolve(window.__injected ? 'ran' : 'silent'), 1000);
        })"""
    )
    assert ran == "blocked"
    assert page.evaluate("window.__injected") is False


def test_a_write_without_the_csrf_token_is_refused(console: Console) -> None:
    console.login("zhang.wei")
    status = console.page.evaluate(
        """async () => (await fetch('/v1/me/totp', {method: 'POST', credentials: 'same-origin',
            headers: {'Content-Type': 'application/json'}, body: '{}'})).status"""
    )
    assert status == 403
    forged = console.page.evaluate(
        """async () => (await fetch('/v1/query', {method: 'POST', credentials: 'same-origin',
            headers: {'Content-Type': 'application/json'},
            body: JSON.stringify({sql: 'SELECT 1 FROM population.people', purpose: 'x',
                                  system: 'rsj-subsidy'})})).status"""
    )
    assert forged == 403


def test_another_roles_page_and_api_are_refused(console: Console) -> None:
    console.login("zhang.wei")
    page = console.page
    page.goto(f"{console.url}/console#/accounts")
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert console.word("无权访问", "may not open") in alert.inner_text()
    nav = page.locator("#nav").inner_text()
    assert console.word("账号管理", "Accounts") not in nav
    # The page is only navigation: the API itself refuses the applicant.
    status = page.evaluate("async () => (await fetch('/v1/accounts')).status")
    assert status == 403
    status = page.evaluate("async () => (await fetch('/v1/audit/export')).status")
    assert status == 403


def test_no_personal_data_in_urls(console: Console) -> None:
    requested: list[str] = []
    console.page.on("request", lambda r: requested.append(r.url))
    console.login("zhang.wei")
    console.open("sql")
    # Columns the journeys' narrowed grant still serves (they share this gateway, and
    # its grant for rsj-subsidy ends up with person_id and name only).
    console.page.get_by_label(console.word("SQL 语句", "SQL")).fill(
        "SELECT person_id, name FROM population.people ORDER BY person_id LIMIT 5"
    )
    console.page.get_by_role("button", name=console.word("执行查询", "Run query")).click()
    console.page.locator(".rowcount, main .error").first.wait_for()
    error = console.page.locator("main .error")
    assert not error.count(), error.first.inner_text()
    text = console.page.locator("main tbody").first.inner_text()
    assert requested and "zhang.wei" not in " ".join(requested)
    assert "demo-password" not in " ".join(requested)
    first_name = text.split("\t")[1] if "\t" in text else ""
    assert not first_name or all(first_name not in url for url in requested)
    assert console.page.url.endswith("#/sql")


def test_logout_ends_the_session_server_side(console: Console) -> None:
    console.login("li.qiang")
    page = console.page
    page.get_by_role("button", name=console.word("退出", "Log out")).click()
    page.get_by_role("button", name=console.word("登录", "Sign in")).wait_for()
    assert page.evaluate("async () => (await fetch('/v1/me')).status") == 401


@pytest.fixture(scope="module")
def short_session_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    process = start_console_gateway(
        tmp_path_factory.mktemp("short"), GATEWAY_CONSOLE_SESSION_TTL="3"
    )
    try:
        yield process.url
    finally:
        process.stop()


def test_an_expired_session_returns_to_the_sign_in_page(
    browser: Any, short_session_url: str, tmp_path: Path
) -> None:
    context = browser.new_context(locale="zh-CN")
    try:
        console = Console(context.new_page(), short_session_url, "zh-CN")
        console.login("zhang.wei")
        console.open("mine")
        time.sleep(3.5)
        console.page.get_by_role("link", name="数据目录").click()
        notice = console.page.get_by_role("alert")
        notice.wait_for()
        assert "会话已过期" in notice.inner_text()
        console.shot("session-expired")
    finally:
        context.close()
