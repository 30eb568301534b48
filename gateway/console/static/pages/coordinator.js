// Coordinators (数据局): every application, overdue and escalated first, arbitration;
// the sharing-statistics dashboard, drawn as plain inline SVG (no chart library: see
// docs/design.md "Web console").
import { get } from "../api.js";
import { clear, field, h, table } from "../dom.js";
import { t } from "../i18n.js";
import { decisionCard } from "./officer.js";

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

/** A horizontal bar chart of [label, value] with a title (and a table for screen readers). */
export function barChart(title, pairs, format = (v) => String(v)) {
  const width = 520;
  const rowH = 22;
  const max = Math.max(1, ...pairs.map(([, v]) => v || 0));
  const chart = svg("svg", { width, height: rowH * pairs.length + 10, role: "img", "aria-label": title },
    svg("title", {}, title),
    ...pairs.flatMap(([label, value], i) => [
      svg("text", { x: 0, y: i * rowH + 15 }, label),
      svg("rect", { x: 90, y: i * rowH + 4, height: 14, width: Math.round(((value || 0) / max) * 330), fill: "#0b4f9c" }),
      svg("text", { x: 96 + Math.round(((value || 0) / max) * 330), y: i * rowH + 15 }, value === null ? "—" : format(value)),
    ]));
  return h("figure.card.chart", {}, h("figcaption", {}, h("strong", {}, title)), chart);
}

export async function allPage(root) {
  const list = h("div");
  const [viewField, view] = field(t("filter"), h("select", {},
    ["all", "escalated", "overdue", "pending", "due_soon"].map((v) => h("option", { value: v }, v))));
  const refresh = async () => {
    const apps = await get("/v1/applications", { view: view.value });
    const rank = (a) => (a.deadline?.escalated ? 2 : 0) + (a.deadline?.overdue ? 1 : 0);
    const items = [...apps.items].sort((a, b) => rank(b) - rank(a));
    clear(list, items.length ? items.map((a) => decisionCard(a,
      a.deadline?.escalated && !a.decided_at ? ["arbitrate_approve", "arbitrate_refuse", "comment"] : ["comment"], refresh))
      : h("p.muted", {}, t("none")));
  };
  view.addEventListener("change", refresh);
  root.append(viewField, list);
  await refresh();
}

export async function statsPage(root) {
  const stats = await get("/v1/statistics");
  const per = stats.departments.map((d) => {
    const sum = (f) => d.datasets.reduce((n, ds) => n + (f(ds) || 0), 0);
    const answered = sum((ds) => ds.applications.answered);
    const approved = sum((ds) => ds.applications.approved + ds.applications.narrowed);
    const medians = d.datasets.map((ds) => ds.applications.median_reply_working_days).filter((v) => v !== null);
    return {
      department: d.department,
      rate: answered ? approved / answered : null,
      reply: medians.length ? Math.max(...medians) : null,
      served: sum((ds) => ds.queries.served),
      rows: sum((ds) => ds.queries.rows_delivered),
    };
  });
  root.append(
    h("p.muted", {}, `${t("from")} ${stats.period.from} ${t("until")} ${stats.period.until}`),
    barChart(t("approval_rate"), per.map((p) => [p.department, p.rate]), (v) => `${Math.round(v * 100)}%`),
    barChart(t("reply_days"), per.map((p) => [p.department, p.reply])),
    barChart(t("queries_served"), per.map((p) => [p.department, p.served])),
    barChart(t("rows_delivered"), per.map((p) => [p.department, p.rows])),
    table([t("department"), t("approval_rate"), t("reply_days"), t("queries_served"), t("rows_delivered")],
      per.map((p) => [p.department, p.rate === null ? "—" : `${Math.round(p.rate * 100)}%`, p.reply ?? "—", p.served, p.rows])),
  );
}
