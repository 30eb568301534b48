// Administrators (管理员): accounts and roles; everyone: their own account and TOTP
// enrolment.
import { get, post, call } from "../api.js";
import { clear, field, h, table } from "../dom.js";
import { t } from "../i18n.js";

const ROLES = ["applicant", "provider_officer", "coordinator", "auditor", "administrator"];

export async function accountsPage(root) {
  const list = h("div");
  const refresh = async () => {
    const found = await get("/v1/accounts");
    clear(list, table([t("username"), t("display_name"), t("department"), t("roles"), t("systems"), t("status_"), "TOTP"],
      found.accounts.map((a) => [a.username, a.display_name, a.department, a.roles.join(", "), a.systems.join(", "), a.status,
        a.totp_enabled ? "✔" : "",
      ])));
  };
  const [uField, username] = field(t("username"), h("input", { autocomplete: "off" }));
  const [nField, name] = field(t("display_name"), h("input"));
  const [dField, department] = field(t("department"), h("input", { size: 8 }));
  const [rField, role] = field(t("roles"), h("select", {}, ROLES.map((r) => h("option", { value: r }, r))));
  const [sField, systems] = field(t("systems"), h("input", { size: 24 }));
  const [pField, password] = field(t("password"), h("input", { type: "password", autocomplete: "new-password" }));
  const out = h("div", { "aria-live": "polite" });
  const form = h("form.card", {}, h("h2", {}, t("create")), h("div.row", {}, uField, nField, dField, rField, sField, pField),
    h("p", {}, h("button", { type: "submit" }, t("create"))), out);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const made = await post("/v1/accounts", {
        username: username.value, display_name: name.value, department: department.value, roles: [role.value],
        systems: systems.value.split(",").map((s) => s.trim()).filter(Boolean), password: password.value,
      });
      clear(out, h("div.notice", { role: "status" }, `${t("done")}: ${made.username}`));
      await refresh();
    } catch (error) {
      clear(out, h("div.error", { role: "alert" }, error.message));
    }
  });
  root.append(list, form);
  await refresh();
}

export async function mePage(root) {
  const me = await get("/v1/me");
  const out = h("div", { "aria-live": "polite" });
  root.append(table([t("field"), ""], [
    [t("username"), me.username], [t("display_name"), me.display_name], [t("department"), me.department],
    [t("roles"), me.roles.join(", ")], [t("systems"), me.systems.join(", ") || t("none")],
    ["TOTP", me.totp_enabled ? t("totp_on") : t("none")],
  ]), out);
  if (me.totp_enabled) return;
  const start = h("button.secondary", { type: "button" }, t("enable_totp"));
  start.addEventListener("click", async () => {
    try {
      const enrol = await post("/v1/me/totp", {});
      const [codeField, code] = field(t("totp_code"), h("input", { inputmode: "numeric", autocomplete: "one-time-code" }));
      const confirmBtn = h("button", { type: "button" }, t("confirm"));
      confirmBtn.addEventListener("click", async () => {
        try {
          await call("POST", "/v1/me/totp/confirm", { code: code.value });
          clear(out, h("div.notice", { role: "status" }, t("totp_on")));
        } catch (error) {
          out.append(h("div.error", { role: "alert" }, error.message));
        }
      });
      clear(out, h("p", {}, t("totp_secret"), ": ", h("code.totp-secret", {}, enrol.secret)), codeField, confirmBtn);
    } catch (error) {
      clear(out, h("div.error", { role: "alert" }, error.message));
    }
  });
  root.append(start);
}
