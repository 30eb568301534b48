// Auditors (审计员): log search with filters, one record with its proof, checkpoint
// history, evidence export, and in-browser verification of a kept receipt.
import { call, get } from "../api.js";
import { clear, download, field, h, table } from "../dom.js";
import { t } from "../i18n.js";
import { verifyKept } from "../verify.js";

async function verifierKeys() {
  const keys = await get("/v1/audit/keys");
  return keys.keys.map((k) => k.vkey);
}

function checksView(result) {
  const allOk = result.checks.every((c) => c.ok !== false);
  return h("div", {},
    h(allOk ? "div.notice.verified" : "div.error.not-verified", { role: "status" }, allOk ? t("verified") : t("not_verified")),
    h("ul.checks", {}, result.checks.map((c) => h("li", { "data-check": c.check, "data-ok": String(c.ok) },
      c.ok === true ? "✔ " : c.ok === false ? "✘ " : "– ", t(c.check)))));
}

function recordView(item, keys) {
  const record = item.record;
  const out = h("div", { "aria-live": "polite" });
  const receiptBytes = new TextEncoder().encode(JSON.stringify(item.receipt));
  return h("div.card.record", {},
    h("h2", {}, `${t("record")} #${item.index}`),
    table([t("field"), ""], Object.entries(record).filter(([k]) => k !== "rewritten_sql").map(([k, v]) =>
      [k, typeof v === "object" && v !== null ? JSON.stringify(v) : String(v)])),
    h("div.row", {},
      h("button", { type: "button", onclick: async () => clear(out, checksView(await verifyKept(receiptBytes, keys))) }, t("verify_proof")),
      h("button.secondary", { type: "button", onclick: () => download(receiptBytes, `receipt-${record.audit_id}.json`) }, t("receipt"))),
    out);
}

export async function searchPage(root, account) {
  const keys = await verifierKeys();
  const inputs = {};
  const fields = ["system", "dataset", "purpose", "outcome", "since", "until", "q"].map((name) => {
    const [wrap, control] = field(name === "q" ? t("search") : name === "since" ? t("from") : name === "until" ? t("until") : t(name),
      h("input", { name, size: 14, type: name === "since" || name === "until" ? "date" : "text" }));
    inputs[name] = control;
    return wrap;
  });
  if (!account.roles.includes("auditor")) {
    // An officer reads the records of its own department's datasets: name one.
    const catalog = await get("/v1/catalog", { q: "__none__" });
    const own = (await get("/v1/catalog")).datasets.filter((d) => d.owner && d.owner.code === account.department);
    if (catalog && own.length) inputs.dataset.value = own[0].name;
  }
  const results = h("div");
  const detail = h("div");
  let before = null;
  const search = async (more) => {
    const params = Object.fromEntries(Object.entries(inputs).map(([k, c]) => [k, c.value]));
    params.limit = 50;
    if (more && before !== null) params.before = before;
    const page = await get("/v1/audit/records", params);
    before = page.next_before;
    const rows = page.items.map((item) => [
      item.record.time, h("button.secondary", { type: "button", onclick: () => clear(detail, recordView(item, keys)) }, item.record.audit_id),
      item.record.system || "—", item.record.officer || "—", item.record.outcome, item.record.purpose || "—",
    ]);
    clear(results, table([t("time"), t("audit_id"), t("system"), t("officer"), t("outcome"), t("purpose")], rows),
      before !== null && before !== undefined ? h("button.secondary", { type: "button", onclick: () => search(true) }, t("next_page")) : null);
  };
  const form = h("form", { role: "search" }, h("div.row", {}, fields, h("button", { type: "submit" }, t("filter"))));
  form.addEventListener("submit", (e) => { e.preventDefault(); search(false).catch((err) => clear(results, h("div.error", { role: "alert" }, err.message))); });
  const [fromField, start] = field(t("from"), h("input", { type: "number", min: 0, value: 0 }));
  const [toField, end] = field(t("until"), h("input", { type: "number", min: 1, value: "" }));
  const exportOut = h("div", { "aria-live": "polite" });
  const doExport = async () => {
    clear(exportOut, h("progress", { "aria-label": t("export") }));
    try {
      const resp = await call("GET", `/v1/audit/export?${new URLSearchParams(Object.entries({ start: start.value, end: end.value }).filter(([, v]) => v !== ""))}`);
      download(resp.bytes, "evidence-bundle.json");
      clear(exportOut, h("div.notice", { role: "status" }, `${t("done")} (${resp.bytes.length} B)`));
    } catch (error) {
      clear(exportOut, h("div.error", { role: "alert" }, error.message));
    }
  };
  root.append(form, results, detail,
    h("h2", {}, t("export")), h("div.row", {}, fromField, toField, h("button.secondary", { type: "button", onclick: doExport }, t("export"))), exportOut);
  await search(false);
}

export async function checkpointsPage(root) {
  const found = await get("/v1/audit/checkpoints");
  const rows = found.checkpoints.slice().reverse().map((note) => {
    const [origin, size, rootHash] = note.split("\n");
    return [origin, size, h("code", {}, rootHash)];
  });
  root.append(table(["origin", t("checkpoint_size"), t("root")], rows));
}

export async function verifyPage(root) {
  const keys = await verifierKeys();
  const [fileField, file] = field(t("choose_file"), h("input", { type: "file", accept: ".json,application/json" }));
  const out = h("div", { "aria-live": "polite" });
  file.addEventListener("change", async () => {
    clear(out);
    const chosen = file.files[0];
    if (!chosen) return;
    try {
      const result = await verifyKept(new Uint8Array(await chosen.arrayBuffer()), keys);
      clear(out, checksView(result), result.record ? h("p", {}, `${t("audit_id")}: ${result.record.audit_id} · ${result.record.outcome} · ${result.record.time}`) : null);
    } catch (error) {
      clear(out, h("div.error.not-verified", { role: "alert" }, `${t("not_verified")}: ${error.message}`));
    }
  });
  root.append(h("p", {}, t("verify_title")), fileField, out);
}
