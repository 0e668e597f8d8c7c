// Who is signed in: the audience (merchant staff, alliance admin, platform operator),
// the mall or alliance, the tokens (sessionStorage: gone with the tab) and, for staff,
// the /me answer whose permissions decide the menus.
import { ref, computed } from "vue";
import type { components } from "./api/schema";

export type Audience = "staff" | "alliance" | "platform";
export type Permission = components["schemas"]["Permission"];
type TokenPair = components["schemas"]["TokenPair"];
type Me = components["schemas"]["Me"];

export interface Session {
  audience: Audience;
  /** Mall slug (staff), alliance slug (alliance admin) or "" (platform). */
  scope: string;
  email: string;
  access_token: string;
  refresh_token: string;
}

const KEY = "pm.portal.session";

function load(): Session | null {
  try {
    const s = JSON.parse(sessionStorage.getItem(KEY) || "null");
    return s && typeof s.access_token === "string" && s.audience ? (s as Session) : null;
  } catch {
    return null;
  }
}

export const session = ref<Session | null>(load());
/** The staff member's /me answer (staff audience only), loaded after sign-in. */
export const me = ref<Me | null>(null);
export const permissions = computed(() => new Set<Permission>(me.value?.permissions ?? []));

export function can(p: Permission | undefined): boolean {
  return !p || permissions.value.has(p);
}

function save(s: Session | null) {
  session.value = s;
  if (s) sessionStorage.setItem(KEY, JSON.stringify(s));
  else sessionStorage.removeItem(KEY);
}

function base(audience: Audience, scope: string): string {
  switch (audience) {
    case "staff":
      return `/v1/tenants/${encodeURIComponent(scope)}/staff/auth`;
    case "alliance":
      return `/v1/alliances/${encodeURIComponent(scope)}/auth`;
    case "platform":
      return "/v1/platform/auth";
  }
}

/** Whether the audience can refresh its tokens and end a session server-side. */
export function hasRefresh(audience: Audience): boolean {
  return audience !== "alliance";
}

async function postJson(url: string, body: unknown): Promise<Response> {
  return fetch(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
}

/** Signs in; answers the Response on failure (the caller shows its error). */
export async function signIn(audience: Audience, scope: string, email: string, password: string): Promise<Response | null> {
  const res = await postJson(`${base(audience, scope)}/login`, { email, password });
  if (!res.ok) return res;
  const pair = (await res.json()) as TokenPair;
  me.value = null;
  save({ audience, scope, email, access_token: pair.access_token, refresh_token: pair.refresh_token });
  return null;
}

let refreshing: Promise<boolean> | null = null;

/** Exchanges the refresh token once (concurrent 401s share one exchange). */
export function refreshSession(s: Session): Promise<boolean> {
  if (!hasRefresh(s.audience) || !s.refresh_token) return Promise.resolve(false);
  if (session.value && session.value.access_token !== s.access_token) return Promise.resolve(true);
  refreshing ??= (async () => {
    try {
      const res = await postJson(`${base(s.audience, s.scope)}/refresh`, { refresh_token: s.refresh_token });
      if (!res.ok) return false;
      const pair = (await res.json()) as TokenPair;
      save({ ...s, access_token: pair.access_token, refresh_token: pair.refresh_token });
      return true;
    } catch {
      return false;
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

type EndReason = "signed_out" | "expired";
let onEnded: (reason: EndReason) => void = () => {};
export function whenSessionEnds(f: (reason: EndReason) => void) {
  onEnded = f;
}

/** Forgets the session (and everything shown for it). */
export function endSession(reason: EndReason) {
  const had = session.value;
  save(null);
  me.value = null;
  if (had) onEnded(reason);
}

/** Signs out: ends the session server-side where the audience can (not awaited). */
export function signOut() {
  const s = session.value;
  if (s && hasRefresh(s.audience)) {
    void postJson(`${base(s.audience, s.scope)}/logout`, { refresh_token: s.refresh_token }).catch(() => {});
  }
  endSession("signed_out");
}
