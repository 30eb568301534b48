// Provider officers (提供方安全员): the inbox of applications for their datasets with
// deadline clocks and decisions; policy versions (diff, validate, propose, two-person
// approval, activate, explain as a consumer system, replay).
import { get, post } from "../api.js";
import { clear, field, h, table } from "../dom.js";
import { t } from "../i18n.js";
import { deadline } from "./consumer.js";

function columnsText(app) {
  return Object.entries(app.columns).map(([tb, cols]) => `${tb}: ${cols.join(", ")}`).join("; ");
}

/** One application with the decisions the caller may take (the API decides who may). */
export function decisionCard(app, actions, refresh) {
  const [reasonField, reason] = field(t("reason"), h("textarea", { rows: 2 }));
  const [dropField, drop] = field(t("drop_columns"), h("input", { size: 40 }));
  const out = h("div", { "aria-live": "polite" });
  const act = (action, narrowing) => async () => {
    clear(out);
    try {
      const body = { reason: reason.value || null, expected_version: app.version };
      if (narrowing) {
        body.narrowing = { drop_columns: drop.value.split(",").map((c) => c.trim()).filter(Boolean) };
      }
      const done = await post(`/v1/applications/${encodeURIComponent(app.id)}/${action}`, body);
      clear(out, h("div.notice", { role: "status" }, `${t("done")}: ${done.state_zh || done.state}`));
      setTimeout(refresh, 600);
    } catch (error) {
      clear(out, h("div.error", { role: "alert" }, error.message));
    }
  };
  const labels = { review: "review", approve: "approve", narrow: "narrow", return: "return_", refuse: "refuse",
    arbitrate_approve: "arbitrate_approve", arbitrate_refuse: "arbitrate_refuse", comment: "comment" };
  return h("article.card.application", { "data-id": app.id },
    h("h2", {}, `${app.id} · ${app.state_zh || app.state}`),
    h("p", {}, `${t("applicant")}: ${app.created_by} (${app.consumer_department}) → ${app.dataset} · ${t("purpose")}: ${app.purpose}`),
    h("p", {}, `${t("field")}: ${columnsText(app)}`),
    h("p", {}, `${t("legal_basis")}: ${app.legal_basis || "—"} · ${t("scenario")}: ${app.scenario || "—"}`),
    h("p.clock", {}, `${t("deadline")}: `, deadline(app)),
    reasonField, actions.includes("narrow") ? dropField : null,
    h("div.row", {}, actions.map((a) => h(a === "refuse" || a === "arbitrate_refuse" ? "button.danger" : a === "approve" ? "button" : "button.secondary",
      { type: "button", "data-action": a, onclick: act(a === "narrow" ? "approve" : a, a === "narrow") }, t(labels[a])))),
    out);
}

function overdueFirst(items) {
  return [...items].sort((a, b) => (b.deadline?.escalated ? 2 : 0) + (b.deadline?.overdue ? 1 : 0)
    - ((a.deadline?.escalated ? 2 : 0) + (a.deadline?.overdue ? 1 : 0))
    || (a.deadline?.working_days_left ?? 99) - (b.deadline?.working_days_left ?? 99));
}

export async function inboxPage(root) {
  const list = h("div");
  const refresh = async () => {
    const apps = await get("/v1/applications", { view: "pending" });
    clear(list, apps.items.length ? overdueFirst(apps.items).map((a) =>
      decisionCard(a, ["review", "approve", "narrow", "return", "refuse"], refresh)) : h("p.muted", {}, t("none")));
  };
  root.append(list);
  await refresh();
}

export async function policyPage(root, account) {
  const versions = await get("/v1/policy/versions");
  const detail = h("div");
  const mayChange = account.roles.some((r) => r === "provider_officer" || r === "administrator");
  const open = async (id) => {
    const v = await get(`/v1/policy/versions/${encodeURIComponent(id)}`);
    clear(detail, h("div.card", {},
      h("h2", {}, `${v.id} · ${v.state}`),
      h("p", {}, `${t("author")}: ${v.author} · ${t("reason")}: ${v.reason || "—"}`),
      h("h3", {}, t("diff")), diffView(v.diff.unified),
      mayChange ? h("div.row", {}, ["approve", "activate", "reject"].map((a) => h("button.secondary", { type: "button",
        onclick: async () => {
          try { await post(`/v1/policy/versions/${encodeURIComponent(v.id)}/${a}`, { reason: "" }); await open(v.id); }
          catch (error) { detail.append(h("div.error", { role: "alert" }, error.message)); }
        } }, t(a === "approve" ? "approve_v" : a)))) : null));
    return v;
  };
  root.append(
    table([t("version"), t("state"), t("author"), t("reason"), ""], versions.items.map((v) => [
      v.id, v.state + (v.version === versions.active ? " ★" : ""), v.author, v.reason || "",
      h("button.secondary", { type: "button", onclick: () => open(v.id) }, t("diff")),
    ])),
    detail,
  );
  if (!mayChange) return;
  const active = versions.items.find((v) => v.version === versions.active);
  const files = active ? (await get(`/v1/policy/versions/${encodeURIComponent(active.id)}`)).files : {};
  const [fileField, file] = field(t("file"), h("select", {}, Object.keys(files).map((f) => h("option", { value: f }, f))));
  const [contentField, content] = field(t("content"), h("textarea", { rows: 12, spellcheck: "false", value: files["policy.csv"] || "" }));
  file.value = "policy.csv";
  file.addEventListener("change", () => { content.value = files[file.value] || ""; });
  const [whyField, why] = field(t("reason"), h("input", { size: 50 }));
  const out = h("div", { "aria-live": "polite" });
  const proposal = () => ({ files: { [file.value]: content.value }, reason: why.value });
  const validate = async () => {
    const r = await post("/v1/policy/validate", proposal());
    clear(out, h(r.valid ? "div.notice" : "div.error", { role: "status" }, r.valid ? t("valid") : t("invalid")),
      r.problems.length ? h("ul.problems", {}, r.problems.map((p) => h("li", {}, typeof p === "string" ? p : JSON.stringify(p)))) : null,
      h("pre", {}, JSON.stringify(r.changes, null, 1)));
  };
  const propose = async () => {
    const v = await post("/v1/policy/versions", proposal());
    clear(out, h("div.notice", { role: "status" }, `${t("done")}: ${v.id} (${v.state})`));
    await open(v.id);
  };
  const guard = (fn) => () => fn().catch((error) => clear(out, h("div.error", { role: "alert" }, error.message)));
  root.append(h("h2", {}, t("propose")), h("div.card", {}, fileField, contentField, whyField,
    h("div.row", {}, h("button.secondary", { type: "button", onclick: guard(validate) }, t("validate")),
      h("button", { type: "button", onclick: guard(propose) }, t("propose"))), out));
  if (account.roles.includes("provider_officer")) root.append(explainBox(versions));
}

function diffView(unified) {
  if (!unified) return h("p.muted", {}, t("none"));
  return h("pre.diff", {}, unified.split("\n").map((line) =>
    h(line.startsWith("+") ? "span.diff-add" : line.startsWith("-") ? "span.diff-del" : "span", {}, `${line}\n`)));
}

function explainBox(versions) {
  const [sysField, system] = field(t("system"), h("input", { value: "rsj-subsidy" }));
  const [purposeField, purpose] = field(t("purpose"), h("input", { value: "employment_subsidy_review" }));
  const [sqlField, sql] = field(t("sql"), h("textarea", { rows: 3, value: "SELECT person_id, name FROM population.people LIMIT 5" }));
  const [verField, version] = field(t("version"), h("select", {}, versions.items.map((v) => h("option", { value: v.version }, v.id))));
  version.value = versions.active;
  const out = h("div", { "aria-live": "polite" });
  const run = (path, body) => async () => {
    clear(out, h("p.muted", {}, t("loading")));
    try {
      clear(out, h("pre", {}, JSON.stringify(await post(path, body()), null, 1)));
    } catch (error) {
      clear(out, h("div.error", { role: "alert" }, error.message));
    }
  };
  return h("div.card", {}, h("h2", {}, `${t("explain_as")} / ${t("replay")}`),
    h("div.row", {}, sysField, purposeField, verField), sqlField,
    h("div.row", {},
      h("button.secondary", { type: "button", onclick: run("/v1/explain", () => ({ sql: sql.value, purpose: purpose.value, system: system.value, version: version.value })) }, t("explain_as")),
      h("button.secondary", { type: "button", onclick: run("/v1/policy/replay", () => ({ version: version.value, limit: 200 })) }, t("replay"))),
    out);
}
