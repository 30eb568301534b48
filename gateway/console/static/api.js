// The one way pages talk to the gateway: the same JSON API as every other client, with
// the person's cookie session; state-changing requests echo the CSRF token received at
// login. The console has no privileged path of its own.
import { lang } from "./i18n.js";

const CSRF_KEY = "gw-csrf";

export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
  }
}

export function setCsrf(token) {
  // sessionStorage: one tab's session; gone when the tab closes.
  if (token) sessionStorage.setItem(CSRF_KEY, token);
  else sessionStorage.removeItem(CSRF_KEY);
}

let onUnauthenticated = () => {};
export function whenUnauthenticated(fn) {
  onUnauthenticated = fn;
}

/** Fetch ``path``; returns {status, headers, bytes, json}. Throws ApiError. */
export async function call(method, path, body) {
  const headers = { Accept: "application/json", "Accept-Language": lang() };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (!["GET", "HEAD"].includes(method)) {
    headers["X-CSRF-Token"] = sessionStorage.getItem(CSRF_KEY) || "";
  }
  const resp = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
    cache: "no-store",
  });
  const bytes = new Uint8Array(await resp.arrayBuffer());
  let json = null;
  try {
    json = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    json = null;
  }
  if (!resp.ok) {
    const error = new ApiError(resp.status, json);
    if (resp.status === 401 && path !== "/v1/auth/login") onUnauthenticated(error);
    throw error;
  }
  return { status: resp.status, headers: resp.headers, bytes, json };
}

export const get = async (path, params) => {
  const query = params ? new URLSearchParams(
    Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== ""),
  ).toString() : "";
  return (await call("GET", query ? `${path}?${query}` : path)).json;
};
export const post = async (path, body) => (await call("POST", path, body ?? {})).json;
