"""Each role's main journeys in the console, end to end against a real gateway, in
Chinese and in English (the ``console`` fixture runs every test in both)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tests.browser.conftest import Console

SQL = "SELECT person_id, name, id_number FROM population.people LIMIT 5"


def test_consumer_browses_the_catalog_as_their_system(console: Console) -> None:
    console.login("zhang.wei")
    console.open("catalog")
    main = console.page.locator("main")
    main.get_by_text("population.people").first.wait_for()
    # What the system would see per field: names masked, the internal number visible.
    row = main.locator("tr", has_text="id_number").first
    assert console.word("脱敏", "masked") in row.inner_text()
    console.page.get_by_label(console.word("搜索", "Search")).fill("enterprises")
    console.page.get_by_role("button", name=console.word("搜索", "Search")).click()
    main.get_by_text("legal_person.enterprises").first.wait_for()
    assert "population.people" not in main.inner_text()
    console.shot("consumer-catalog")


def test_consumer_queries_sees_masks_and_keeps_a_receipt_that_verifies(
    console: Console, tmp_path: Path
) -> None:
    console.login("zhang.wei")
    console.open("sql")
    page = console.page
    page.get_by_label(console.word("通过系统", "Through system")).select_option("rsj-subsidy")
    page.get_by_label(console.word("SQL 语句", "SQL")).fill(SQL)
    page.get_by_role("button", name=console.word("执行查询", "Run query")).click()
    page.locator(".rowcount").wait_for()
    assert page.locator(".rowcount").inner_text() == "5"
    header = page.locator("main thead").first.inner_text()
    assert "name" in header and "pseudonym" in page.locator("main").inner_text()
    cells = page.locator("main tbody tr").first.locator("td").all_inner_texts()
    assert cells[1].endswith("**")  # the name mask, as the server applied it
    audit_id = page.locator(".audit-id").inner_text()
    with page.expect_download() as info:
        page.get_by_role(
            "button",
            name=console.word(
                "下载回执（含结果正文）", "Download the receipt (with the result body)"
            ),
        ).click()
    kept = tmp_path / "kept.json"
    info.value.save_as(kept)
    body = json.loads(kept.read_text("utf-8"))
    assert body["audit_id"] == audit_id and body["receipt"]["audit_id"] == audit_id
    page.get_by_text(
        console.word("网关如何处理此查询", "What the gateway did with this query")
    ).click()
    explained = page.locator("details").inner_text()
    assert "mask:name" in explained and "people" in explained
    console.shot("consumer-sql")
    # The receipt verifies in the browser: body hash, leaf, inclusion, signature.
    console.open("verify")
    page.get_by_label(
        re.compile(console.word("选择回执文件", "Choose the receipt file"))
    ).set_input_files(kept)
    page.locator(".verified").wait_for()
    checks = _checks(page)
    assert checks["verify_body"] == "true" and checks["verify_leaf"] == "true"
    assert checks["verify_inclusion"] == "true"
    assert checks.get("verify_sig") == "true" or "sig_unsupported" in checks
    # One changed byte of the body and the same receipt no longer verifies.
    tampered = tmp_path / "tampered.json"
    tampered.write_text(
        kept.read_text("utf-8")
        .replace('"row_count": 5', '"row_count": 6')
        .replace('"row_count":5', '"row_count":6'),
        "utf-8",
    )
    assert tampered.read_text("utf-8") != kept.read_text("utf-8")
    page.get_by_label(
        re.compile(console.word("选择回执文件", "Choose the receipt file"))
    ).set_input_files(tampered)
    page.locator(".not-verified").wait_for()
    assert _checks(page)["verify_body"] == "false"
    console.shot("verify")


def _checks(page: Any) -> dict[str, str]:
    items = page.locator("ul.checks li")
    return {
        items.nth(i).get_attribute("data-check"): items.nth(i).get_attribute("data-ok")
        for i in range(items.count())
    }


def test_apply_then_the_officer_approves_narrower(console: Console, browser: Any) -> None:
    console.login("zhang.wei")
    console.open("catalog")
    page = console.page
    page.locator(".card", has_text="(population)").get_by_role(
        "button", name=console.word("申请此数据集", "Apply for this dataset")
    ).click()
    page.wait_for_selector("main section form")
    page.get_by_label(re.compile(console.word("字段", "Fields"))).fill(
        "population.people: person_id,name,phone"
    )
    page.get_by_label(console.word("法律依据", "Legal basis")).fill("《就业促进法》")
    page.get_by_label(console.word("使用场景", "Scenario")).fill("就业补贴资格核验")
    page.get_by_label(console.word("申请理由", "Justification")).fill("browser test")
    page.get_by_role("button", name=console.word("提交申请", "Submit")).click()
    app_id = page.locator(".app-id").inner_text()
    console.shot("consumer-apply")

    officer_ctx = browser.new_context(locale=console.language)
    try:
        officer = Console(officer_ctx.new_page(), console.url, console.language)
        officer.login("li.qiang")
        officer.open("inbox")
        card = officer.page.locator(f'article[data-id="{app_id}"]')
        card.wait_for()
        assert console.word("剩余工作日", "Working days left") in card.inner_text()
        # Overdue applications are shown first, in red.
        first = officer.page.locator("article.application").first
        if officer.page.locator(".overdue").count():
            assert first.locator(".overdue").count() == 1
        officer.shot("officer-inbox")
        card.get_by_label(console.word("理由", "Reason")).fill("仅限最小必要字段")
        card.get_by_label(re.compile(console.word("去掉的字段", "Fields to drop"))).fill(
            "population.people.phone"
        )
        card.locator('button[data-action="narrow"]').click()
        card.locator(".notice").wait_for()
        assert (
            "approved" in card.inner_text()
            or "批准" in card.inner_text()
            or "生效" in card.inner_text()
        )
    finally:
        officer_ctx.close()
    console.open("mine")
    mine = page.locator("main").inner_text()
    assert f"GR-{app_id}" in mine
    console.shot("consumer-mine")


def test_auditor_searches_opens_a_record_and_verifies_its_proof(console: Console) -> None:
    console.login("qian.hui")
    console.open("audit")
    page = console.page
    page.get_by_label(console.word("结果", "Outcome")).fill("served")
    page.get_by_role("button", name=console.word("筛选", "Filter")).click()
    page.wait_for_selector("main tbody tr")
    page.locator("main tbody tr").first.locator("button").click()
    record = page.locator(".record")
    record.wait_for()
    assert "served" in record.inner_text()
    record.get_by_role(
        "button", name=console.word("校验包含证明", "Verify the inclusion proof")
    ).click()
    page.locator(".verified").wait_for()
    assert _checks(page)["verify_inclusion"] == "true"
    console.shot("auditor-record")
    console.open("checkpoints")
    assert page.locator("main tbody tr").count() >= 1
    console.shot("auditor-checkpoints")


def test_coordinator_sees_overdue_first_and_the_statistics(console: Console) -> None:
    console.login("zhao.min")
    console.open("all")
    page = console.page
    page.wait_for_selector("article.application")
    first = page.locator("article.application").first
    assert first.locator(".overdue").count() == 1
    console.shot("coordinator-applications")
    console.open("stats")
    charts = page.locator("figure.chart svg")
    assert charts.count() == 4
    assert page.locator("figure.chart rect").count() > 0
    console.shot("coordinator-statistics")


def test_officer_validates_a_broken_policy_in_place(console: Console) -> None:
    console.login("li.qiang")
    console.open("policy")
    page = console.page
    content = page.get_by_label(console.word("内容", "Content"))
    broken = "p, 10, role:nobody, gaj, no.such.column, select, x, allow, 2099-12-31T00:00:00Z, deny"
    content.fill(content.input_value() + "\n" + broken + "\n")
    page.get_by_role("button", name=console.word("校验", "Validate")).click()
    page.locator("main .error").wait_for()
    assert page.locator("ul.problems li").count() >= 1
    console.shot("officer-policy")


def test_administrator_lists_accounts_and_sees_own_account(console: Console) -> None:
    console.login("admin")
    console.open("accounts")
    assert "zhang.wei" in console.page.locator("main").inner_text()
    console.shot("admin-accounts")
    console.open("me")
    assert (
        console.word("绑定动态验证码", "Enrol an authenticator")
        in console.page.locator("main").inner_text()
    )
