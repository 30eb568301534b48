// The console's shell: sign-in, navigation by role, the page router and the language
// switch. The URL fragment names only the page (#/sql); everything else stays in
// memory, so no personal data ends up in URLs, history or logs.
import { ApiError, call, get, post, setCsrf, whenUnauthenticated } from "./api.js";
import { clear, field, h } from "./dom.js";
import { lang, setLang, t } from "./i18n.js";
import * as admin from "./pages/admin.js";
import * as auditor from "./pages/auditor.js";
import * as consumer from "./pages/consumer.js";
import * as coordinator from "./pages/coordinator.js";
import * as officer from "./pages/officer.js";

// page -> [module render function, roles that may open it]. The API checks the roles
// again on every call; this only decides what the navigation offers.
const PAGES = {
  catalog: [consumer.catalogPage, ["applicant"]],
  sql: [consumer.sqlPage, ["applicant"]],
  apply: [consumer.applyPage, ["applicant"]],
  mine: [consumer.minePage, ["applicant"]],
  inbox: [officer.inboxPage, ["provider_officer"]],
  policy: [officer.policyPage, ["provider_officer", "administrator", "coordinator", "auditor"]],
  all: [coordinator.allPage, ["coordinator"]],
  stats: [coordinator.statsPage, ["coordinator", "provider_officer"]],
  audit: [auditor.searchPage, ["auditor", "provider_officer"]],
  checkpoints: [auditor.checkpointsPage, ["auditor"]],
  verify: [auditor.verifyPage, ["auditor", "applicant", "provider_officer", "coordinator"]],
  accounts: [admin.accountsPage, ["administrator"]],
  me: [admin.mePage, ["applicant", "provider_officer", "coordinator", "auditor", "administrator"]],
};

const state = { account: null };

export function account() {
  return state.account;
}

function pagesFor(acct) {
  return Object.keys(PAGES).filter((p) => PAGES[p][1].some((r) => acct.roles.includes(r)));
}

function main() {
  return document.getElementById("main");
}

export function status(text) {
  clear(document.getElementById("status"), text);
}

export function showError(where, error) {
  const p = error instanceof ApiError ? error.problem : {};
  where.append(
    h("div.error", { role: "alert" },
      h("strong", {}, p.title || t("error")), " ", error.message,
      p.audit_id ? h("div.muted", {}, `${t("audit_id")}: ${p.audit_id}`) : null),
  );
}

function chrome() {
  document.documentElement.lang = lang();
  document.title = `${t("brand")} · Console`;
  clear(document.getElementById("brand"), t("brand"));
  document.querySelector(".skip").textContent = t("skip");
  document.getElementById("nav").setAttribute("aria-label", t("nav"));
  clear(document.getElementById("lang"), t("switch"));
  const out = document.getElementById("logout");
  clear(out, t("logout"));
  out.hidden = !state.account;
  const who = document.getElementById("who");
  clear(who, state.account ? `${state.account.display_name} (${state.account.username})` : "");
  const nav = document.getElementById("nav");
  const current = currentPage();
  clear(nav, state.account ? pagesFor(state.account).map((p) =>
    h("a", { href: `#/${p}`, "aria-current": p === current ? "page" : null }, t(`p_${p}`))) : []);
}

function currentPage() {
  return (location.hash.match(/^#\/([a-z]+)$/) || [])[1] || "";
}

function loginPage(message) {
  state.account = null;
  chrome();
  const [userField, user] = field(t("username"), h("input", { autocomplete: "username", required: true }));
  const [passField, pass] = field(t("password"), h("input", { type: "password", autocomplete: "current-password", required: true }));
  const [totpField, totp] = field(t("totp"), h("input", { inputmode: "numeric", autocomplete: "one-time-code" }));
  const errors = h("div");
  const form = h("form.login", { novalidate: true },
    userField, passField, totpField, h("p", {}, h("button", { type: "submit" }, t("login"))), errors);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clear(errors);
    try {
      const body = await post("/v1/auth/login", {
        username: user.value, password: pass.value, totp: totp.value || null, session: "cookie",
      });
      setCsrf(body.csrf_token);
      state.account = body.account;
      const first = pagesFor(state.account)[0];
      if (currentPage() === first) route(); else location.hash = `#/${first}`;
    } catch (error) {
      showError(errors, error);
    }
  });
  clear(main(), h("h1", {}, t("login_title")), message ? h("div.notice", { role: "alert" }, message) : null, form);
  user.focus();
}

// Each navigation gets a number: a page that finishes loading after the user has moved on
// must not overwrite the newer page.
let routeSeq = 0;

async function route() {
  const seq = ++routeSeq;
  if (!state.account) return loginPage();
  chrome();
  const page = currentPage();
  const allowed = pagesFor(state.account);
  const target = main();
  if (!page) {
    location.hash = `#/${allowed[0]}`;
    return;
  }
  if (!allowed.includes(page)) {
    clear(target, h("h1", {}, t("error")), h("div.error", { role: "alert" }, t("forbidden")));
    return;
  }
  clear(target, h("h1", {}, t(`p_${page}`)), h("p.muted", {}, t("loading")));
  const body = h("section");
  try {
    await PAGES[page][0](body, state.account);
    if (seq !== routeSeq) return;
    clear(target, h("h1", {}, t(`p_${page}`)), body);
  } catch (error) {
    // 401: api.js has already put up the sign-in page (with why).
    if (error instanceof ApiError && error.status === 401) return;
    if (seq !== routeSeq) return;
    clear(target, h("h1", {}, t(`p_${page}`)));
    showError(target, error);
  }
  target.focus();
}

async function boot() {
  whenUnauthenticated(() => loginPage(t("expired")));
  document.getElementById("lang").addEventListener("click", () => {
    setLang(lang() === "en" ? "zh-CN" : "en");
    if (state.account) route(); else loginPage();
  });
  document.getElementById("logout").addEventListener("click", async () => {
    try { await call("POST", "/v1/auth/logout", {}); } catch { /* already ended */ }
    setCsrf(null);
    loginPage();
  });
  window.addEventListener("hashchange", route);
  try {
    state.account = await get("/v1/me");
  } catch {
    state.account = null;
  }
  route();
}

boot();
