from __future__ import annotations

from tests.e2e.harness import Gateway


def test_masked_filtered_query(gateway: Gateway) -> None:
    resp = gateway.query(
        "rsj-subsidy",
        "SELECT name, phone, district FROM population.people ORDER BY person_id LIMIT 5",
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["row_count"] == 5
    assert all(r[2] == "历下区" for r in body["rows"])
    assert all(r[0].endswith("**") for r in body["rows"])
    assert body["columns"][0]["masking"] == ["name"]
