// Consumer staff (申请人): the catalog as one of their systems sees it, the SQL editor
// (through one of their systems), applying for access, and their applications,
// grants and quotas.
import { call, get, post } from "../api.js";
import { clear, download, field, h, table } from "../dom.js";
import { pick, t } from "../i18n.js";

// What the catalog hands to the application form (kept in memory, never in the URL).
const handoff = { dataset: null, columns: null, system: null };

function systemSelect(account) {
  const select = h("select", {}, account.systems.map((s) => h("option", { value: s }, s)));
  if (handoff.system && account.systems.includes(handoff.system)) select.value = handoff.system;
  select.addEventListener("change", () => { handoff.system = select.value; });
  return field(t("system"), select);
}

function accessLabel(access) {
  if (!access) return h("span.muted", {}, t("no_access"));
  if (access === "allow") return h("span.ok", {}, t("allowed"));
  if (access.startsWith("mask")) return h("span", {}, t("masked"), h("span.mask", {}, access.slice(5) || "default"));
  return h("span.bad", {}, access === "deny" ? t("no_access") : access);
}

export async function catalogPage(root, account) {
  if (!account.systems.length) {
    root.append(h("div.notice", {}, `${t("systems")}: ${t("none")}`));
  }
  const [sysField, system] = systemSelect(account);
  const [qField, q] = field(t("search"), h("input", { type: "search" }));
  const results = h("div");
  const show = async () => {
    clear(results, h("p.muted", {}, t("loading")));
    const doc = await get("/v1/catalog", { system: system.value || null, q: q.value });
    const purposes = Object.keys(doc.purposes || {});
    clear(results, doc.datasets.map((ds) => h("div.card", {},
      h("h2", {}, `${pick(ds.title)} (${ds.name})`),
      h("p", {}, pick(ds.owner && ds.owner.name), " · ", ds.sharing_class_zh || ds.sharing_class),
      h("p.muted", {}, pick(ds.description)),
      ds.tables.map((tb) => [
        h("h3", {}, `${tb.name} — ${pick(tb.description)}`),
        table([t("field"), t("type"), t("sensitivity"), ...purposes.map((p) => `${t("you_see")} · ${pick(doc.purposes[p])}`)],
          tb.columns.map((c) => [
            h("span", {}, c.name, h("br"), h("span.muted", {}, pick(c.description))),
            c.type, c.sensitivity,
            ...purposes.map((p) => accessLabel(c.your_access[p])),
          ])),
      ]),
      h("button.secondary", { type: "button", onclick: () => {
        handoff.dataset = ds.name;
        handoff.columns = ds.tables.map((tb) => `${tb.name}: ${tb.columns.map((c) => c.name).join(",")}`).join("\n");
        location.hash = "#/apply";
      } }, t("apply_for")),
    )));
  };
  const form = h("form.row", { role: "search" }, sysField, qField, h("button", { type: "submit" }, t("search")));
  form.addEventListener("submit", (e) => { e.preventDefault(); show().catch((err) => clear(results, h("div.error", { role: "alert" }, err.message))); });
  root.append(form, results);
  await show();
}

const KEYWORDS = /\b(SELECT|FROM|WHERE|AND|OR|NOT|IN|IS|NULL|AS|ON|JOIN|LEFT|RIGHT|INNER|OUTER|GROUP|BY|ORDER|HAVING|LIMIT|OFFSET|COUNT|SUM|AVG|MIN|MAX|DISTINCT|CASE|WHEN|THEN|ELSE|END|LIKE|BETWEEN|ASC|DESC|WITH|UNION)\b/gi;

/** The SQL as highlighted DOM nodes (keywords, strings, numbers): no markup parsing. */
export function highlight(sql) {
  const out = [];
  const token = /('(?:[^']|'')*'?)|(\b\d+(?:\.\d+)?\b)|([A-Za-z_]+)|([^'A-Za-z_\d]+)/g;
  for (const m of sql.matchAll(token)) {
    if (m[1]) out.push(h("span.str", {}, m[1]));
    else if (m[2]) out.push(h("span.num", {}, m[2]));
    else if (m[3] && m[3].match(KEYWORDS)) out.push(h("span.kw", {}, m[3]));
    else out.push(m[0]);
  }
  return out;
}

export async function sqlPage(root, account) {
  const [sysField, system] = systemSelect(account);
  const purpose = h("select");
  const [purposeField] = field(t("purpose"), purpose);
  const loadPurposes = async () => {
    const doc = await get("/v1/catalog", { system: system.value || null, q: "__none__" });
    clear(purpose, Object.entries(doc.purposes || {}).map(([k, v]) => h("option", { value: k }, `${pick(v)} (${k})`)));
  };
  system.addEventListener("change", () => loadPurposes());
  const [sqlField, sql] = field(t("sql"), h("textarea", { rows: 6, spellcheck: "false",
    value: "SELECT person_id, name, id_number FROM population.people LIMIT 10" }));
  const preview = h("pre.sql-hl", { "aria-hidden": "true" });
  const repaint = () => clear(preview, highlight(sql.value));
  sql.addEventListener("input", repaint);
  const [rowsField, maxRows] = field(t("max_rows"), h("input", { type: "number", min: 1, value: "" }));
  const result = h("div", { "aria-live": "polite" });
  const form = h("form", {}, h("div.row", {}, sysField, purposeField, rowsField), sqlField, preview,
    h("p", {}, h("button", { type: "submit" }, t("run"))), result);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clear(result, h("p.muted", {}, t("loading")));
    try {
      const resp = await call("POST", "/v1/query", {
        sql: sql.value, purpose: purpose.value, system: system.value,
        max_rows: maxRows.value ? Number(maxRows.value) : null,
      });
      renderResult(result, resp.json, resp.bytes);
    } catch (error) {
      clear(result, h("div.error", { role: "alert" }, h("strong", {}, error.problem?.title || t("error")), " ", error.message,
        error.problem?.audit_id ? h("div", {}, `${t("audit_id")}: ${error.problem.audit_id}`) : null));
    }
  });
  root.append(form);
  repaint();
  await loadPurposes();
}

function renderResult(where, body, bytes) {
  const masked = body.columns.filter((c) => c.masking && c.masking.length);
  const record = body.receipt && body.receipt.record ? JSON.parse(body.receipt.record) : null;
  clear(where,
    h("p", {}, `${t("rows")}: `, h("strong.rowcount", {}, String(body.row_count)),
      masked.length ? ` · ${t("masks_applied")}: ${masked.map((c) => `${c.name} (${c.masking.join("+")})`).join(", ")}` : ""),
    body.truncated ? h("div.notice", { role: "alert" }, `${t("truncated")} (${body.row_limit_by}: ${body.row_limit})`) : null,
    table(body.columns.map((c) => h("span", {}, c.name, ...(c.masking || []).map((m) => h("span.mask", {}, m)))),
      body.rows.map((r) => r.map((v) => (v === null ? "NULL" : String(v))))),
    h("div.card", {},
      h("h2", {}, t("receipt")),
      h("p", {}, `${t("audit_id")}: `, h("code.audit-id", {}, body.audit_id)),
      h("button.secondary", { type: "button", onclick: () => download(bytes, `receipt-${body.audit_id}.json`) }, t("download_receipt"))),
    record ? h("details.card", {},
      h("summary", {}, t("explain")),
      h("h3", {}, t("rewritten")), h("pre.sql-hl", {}, highlight(record.rewritten_sql || "")),
      h("h3", {}, t("filters")), h("p", {}, (record.row_filters || []).join(" AND ") || t("none")),
      h("h3", {}, t("decisions")),
      table([t("field"), t("state")], Object.entries(record.decisions || {}).map(([k, v]) => [k, v]))) : null,
  );
}

export async function applyPage(root, account) {
  const catalog = await get("/v1/catalog", { system: account.systems[0] || null });
  const systems = account.systems.map((s) => {
    const box = h("input", { type: "checkbox", value: s, id: `sys-${s}`, checked: true });
    return [box, h("label.inline", { for: `sys-${s}` }, box, " ", s)];
  });
  const [dsField, dataset] = field(t("dataset"), h("select", {},
    catalog.datasets.map((d) => h("option", { value: d.name }, `${pick(d.title)} (${d.name})`))));
  if (handoff.dataset) dataset.value = handoff.dataset;
  const [colsField, columns] = field(t("columns"), h("textarea", { rows: 4, value: handoff.columns || "" }));
  const [purposeField, purpose] = field(t("purpose"), h("select", {},
    Object.entries(catalog.purposes || {}).map(([k, v]) => h("option", { value: k }, `${pick(v)} (${k})`))));
  const [lawField, law] = field(t("legal_basis"), h("input", { size: 50 }));
  const [scField, scenario] = field(t("scenario"), h("input", { size: 50 }));
  const [jField, justification] = field(t("justification"), h("textarea", { rows: 2 }));
  const out = h("div", { "aria-live": "polite" });
  const form = h("form", {},
    h("fieldset", {}, h("legend", {}, t("systems")), systems.map(([, label]) => label)),
    dsField, colsField, purposeField, lawField, scField, jField,
    h("p", {}, h("button", { type: "submit" }, t("submit"))), out);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clear(out);
    const cols = {};
    for (const line of columns.value.split("\n")) {
      const [tbl, list] = line.split(":");
      if (tbl && list) cols[tbl.trim()] = list.split(",").map((c) => c.trim()).filter(Boolean);
    }
    try {
      const created = await post("/v1/applications", {
        systems: systems.filter(([box]) => box.checked).map(([box]) => box.value),
        dataset: dataset.value, columns: cols, purpose: purpose.value,
        legal_basis: law.value, scenario: scenario.value, justification: justification.value,
        contact: account.display_name,
      });
      const submitted = await post(`/v1/applications/${encodeURIComponent(created.id)}/submit`, { expected_version: created.version });
      handoff.dataset = null;
      handoff.columns = null;
      clear(out, h("div.notice", { role: "status" }, `${t("submitted")}: `, h("strong.app-id", {}, submitted.id), ` (${submitted.state_zh || submitted.state})`));
    } catch (error) {
      clear(out, h("div.error", { role: "alert" }, error.message));
    }
  });
  root.append(form);
}

export function deadline(app) {
  const d = app.deadline;
  if (!d || !d.reply_due) return "";
  const text = `${d.reply_due} · ${t("days_left")} ${d.working_days_left}`;
  return d.overdue
    ? h("span.bad.overdue", {}, `${text} · ${t("overdue")}${d.escalated ? ` · ${t("escalated")}` : ""}`)
    : h("span", {}, text);
}

export async function minePage(root) {
  const [apps, grants, quotas] = await Promise.all([
    get("/v1/applications"), get("/v1/grants"), get("/v1/quotas"),
  ]);
  root.append(
    h("h2", {}, t("applications")),
    table(["ID", t("dataset"), t("purpose"), t("state"), t("deadline"), t("reason")],
      apps.items.map((a) => [a.id, a.dataset, a.purpose, a.state_zh || a.state, deadline(a), a.reason || ""])),
    h("h2", {}, t("grants")),
    table(["ID", t("dataset"), t("systems"), t("masked"), t("row_filter"), t("expires")],
      grants.items.map((g) => [g.id, g.dataset, g.systems.join(", "),
        Object.entries(g.masks || {}).map(([k, v]) => `${k}: ${v}`).join("; ") || t("none"),
        Object.values(g.row_filters || {}).join("; ") || t("none"), g.valid_until || "—"])),
    h("h2", {}, t("quotas")),
    quotas.items.length ? table([t("systems"), t("dataset"), t("quotas")],
      quotas.items.map((q) => [q.system || "", q.dataset || "", JSON.stringify(q)])) : h("p.muted", {}, t("none")),
  );
}
