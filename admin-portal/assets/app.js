// Merchant portal: plain JavaScript over the /v1 staff API. Tokens live in
// sessionStorage (gone when the tab closes); the access token is refreshed on 401.
"use strict";

const $ = (id) => document.getElementById(id);
const session = {
  get() { try { return JSON.parse(sessionStorage.getItem("pm.session") || "null"); } catch { return null; } },
  set(s) { sessionStorage.setItem("pm.session", JSON.stringify(s)); },
  clear() { sessionStorage.removeItem("pm.session"); },
};

function esc(v) {
  return String(v ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

async function api(method, path, body, retry = true) {
  const s = session.get();
  const headers = { "Content-Type": "application/json" };
  if (s) headers.Authorization = "Bearer " + s.access_token;
  const res = await fetch(`/v1/tenants/${encodeURIComponent(s ? s.tenant : "")}/staff${path}`, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status === 401 && retry && s) {
    const r = await fetch(`/v1/tenants/${encodeURIComponent(s.tenant)}/staff/auth/refresh`, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ refresh_token: s.refresh_token }),
    });
    if (r.ok) { session.set({ ...(await r.json()), tenant: s.tenant }); return api(method, path, body, false); }
    signOut(); throw new Error("your session has ended; sign in again");
  }
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!res.ok) throw new Error(data?.error?.message || `${res.status} ${res.statusText}`);
  return data;
}

function table(rows, cols) {
  if (!rows.length) return "<p>Nothing yet.</p>";
  return `<table><thead><tr>${cols.map(([, h]) => `<th>${esc(h)}</th>`).join("")}</tr></thead><tbody>${
    rows.map((r) => `<tr>${cols.map(([k]) => `<td>${esc(typeof k === "function" ? k(r) : r[k])}</td>`).join("")}</tr>`).join("")
  }</tbody></table>`;
}

const tabs = {
  async overview(el) {
    const me = await api("GET", "/me");
    const st = me.permissions.includes("settings_read") ? await api("GET", "/settings") : null;
    $("who").textContent = `${me.staff.email} · ${me.staff.role} · ${me.tenant.name}`;
    el.innerHTML = `<h2 id="tenant-name">${esc(me.tenant.name)}</h2><dl>
      <dt>Mall</dt><dd>${esc(me.tenant.slug)} (${esc(me.tenant.status)})</dd>
      <dt>Your role</dt><dd id="my-role">${esc(me.staff.role)}</dd>
      <dt>Permissions</dt><dd>${esc(me.permissions.join(", "))}</dd>
      ${st ? `<dt>Points</dt><dd>${esc(st.points_name)} · ${esc(st.points_per_yuan)} = ¥1</dd>
      <dt>Expiry</dt><dd>${esc(st.expiry.kind)}</dd><dt>Locale</dt><dd>${esc(st.locale)}</dd>` : ""}</dl>`;
  },
  async members(el) {
    const page = await api("GET", "/members?limit=50");
    // Phones come in E.164; a mainland mobile reads better without +86 here.
    const shown = page.items.map((m) => ({ ...m, phone: m.phone ? m.phone.replace(/^\+86(1\d{10})$/, "$1") : m.phone }));
    el.innerHTML = "<h2>Members</h2>" + table(shown, [["id", "ID"], ["phone", "Phone"], ["email", "E-mail"], ["nickname", "Nickname"], ["invite_code", "Invite code"], ["created_at", "Joined"]]);
  },
  async staff(el) {
    const rows = await api("GET", "/users");
    el.innerHTML = "<h2>Staff</h2>" + table(rows, [["id", "ID"], ["email", "E-mail"], ["role", "Role"], [(r) => r.disabled ? "disabled" : "active", "Status"]]);
  },
  async keys(el) {
    const rows = await api("GET", "/api-keys");
    el.innerHTML = `<h2>Partner API keys</h2>${table(rows, [["prefix", "Prefix"], ["name", "Name"], [(r) => r.scopes.join(" "), "Scopes"], [(r) => r.revoked_at ? "revoked" : "active", "Status"]])}
      <form id="key-form"><label>New key name <input name="name" required></label>
      <label>Scopes <input name="scopes" value="members:read points:read" required></label><button>Create key</button></form>
      <div id="key-secret"></div>`;
    $("key-form").onsubmit = async (ev) => {
      ev.preventDefault();
      const f = new FormData(ev.target);
      try {
        const k = await api("POST", "/api-keys", { name: f.get("name"), scopes: String(f.get("scopes")).split(/\s+/).filter(Boolean) });
        await tabs.keys(el);
        $("app-error").textContent = "";
        $("key-secret").innerHTML = `<p>Copy this key now; it will not be shown again:</p><p class="secret">${esc(k.secret)}</p>`;
      } catch (e) { $("app-error").textContent = e.message; }
    };
  },
  async audit(el) {
    const page = await api("GET", "/audit-log?limit=100");
    el.innerHTML = "<h2>Audit log</h2>" + table(page.items, [["at", "When"], ["actor_label", "Who"], ["action", "Action"], ["target", "Target"]]);
  },
};

async function show(tab) {
  $("app-error").textContent = "";
  document.querySelectorAll("nav button[data-tab]").forEach((b) => b.classList.toggle("active", b.dataset.tab === tab));
  document.querySelectorAll(".tab").forEach((t) => (t.hidden = t.id !== "tab-" + tab));
  try { await tabs[tab]($("tab-" + tab)); } catch (e) { $("app-error").textContent = e.message; }
}

function signedIn(yes) {
  $("login-view").hidden = yes;
  $("app-view").hidden = !yes;
  if (!yes) $("who").textContent = "";
}

function signOut() {
  const s = session.get();
  if (s) fetch(`/v1/tenants/${encodeURIComponent(s.tenant)}/staff/auth/logout`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ refresh_token: s.refresh_token }),
  });
  session.clear();
  // Nothing of the previous user stays in the page.
  document.querySelectorAll(".tab").forEach((t) => (t.innerHTML = ""));
  $("app-error").textContent = "";
  $("login-password").value = "";
  signedIn(false);
}

$("login-form").onsubmit = async (ev) => {
  ev.preventDefault();
  $("login-error").textContent = "";
  const tenant = $("login-tenant").value.trim();
  const res = await fetch(`/v1/tenants/${encodeURIComponent(tenant)}/staff/auth/login`, {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ email: $("login-email").value, password: $("login-password").value }),
  });
  const data = await res.json().catch(() => null);
  if (!res.ok) { $("login-error").textContent = data?.error?.message || "sign-in failed"; return; }
  session.set({ ...data, tenant });
  $("login-password").value = "";
  signedIn(true);
  show("overview");
};

document.querySelectorAll("nav button[data-tab]").forEach((b) => (b.onclick = () => show(b.dataset.tab)));
$("logout").onclick = signOut;
const params = new URLSearchParams(location.search);
if (params.get("tenant")) $("login-tenant").value = params.get("tenant");
if (session.get()) { signedIn(true); show("overview"); } else { signedIn(false); }
