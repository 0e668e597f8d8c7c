// The staff member's /me (permissions decide menus and screens) and the mall settings
// that change how things are shown (points name, time zone).
import { ref } from "vue";
import { api, unwrap, ApiError, type Schemas } from "./api/client";
import { session, me, can } from "./session";
import { timeZone, DEFAULT_TIME_ZONE } from "./format";

export const meError = ref<ApiError | null>(null);
export const mallSettings = ref<Schemas["TenantSettings"] | null>(null);

export async function loadMe() {
  const s = session.value;
  if (!s || s.audience !== "staff") return;
  meError.value = null;
  try {
    me.value = await unwrap(api.GET("/v1/tenants/{tenant}/staff/me", { params: { path: { tenant: s.scope } } }));
  } catch (e) {
    if (e instanceof ApiError) meError.value = e;
    throw e;
  }
  mallSettings.value = null;
  timeZone.value = DEFAULT_TIME_ZONE;
  if (can("settings_read")) {
    try {
      const st = await unwrap(api.GET("/v1/tenants/{tenant}/staff/settings", { params: { path: { tenant: s.scope } } }));
      mallSettings.value = st;
      // The settings have no time zone today; honour one as soon as they do.
      const tz = (st as { time_zone?: unknown }).time_zone;
      if (typeof tz === "string" && tz) timeZone.value = tz;
    } catch {
      // Settings only refine what is shown; the screens work without them.
    }
  }
}

/** The signed-in staff member's mall slug. */
export function tenant(): string {
  return session.value?.scope ?? "";
}

export function resetMe() {
  me.value = null;
  meError.value = null;
  mallSettings.value = null;
}
