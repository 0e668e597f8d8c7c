// Times as `2019/11/21 10:38:25` in the mall's time zone (Asia/Shanghai unless the
// mall's settings name one), points with thousands separators.
import { ref } from "vue";

export const DEFAULT_TIME_ZONE = "Asia/Shanghai";
export const timeZone = ref(DEFAULT_TIME_ZONE);

const formatters = new Map<string, Intl.DateTimeFormat>();
function formatter(tz: string): Intl.DateTimeFormat {
  let f = formatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone: tz,
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
      hourCycle: "h23",
    });
    formatters.set(tz, f);
  }
  return f;
}

function parts(d: Date, tz: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of formatter(tz).formatToParts(d)) out[p.type] = p.value;
  return out;
}

/** `2019/11/21 10:38:25`; "" for no time. */
export function formatTime(v: string | null | undefined, tz = timeZone.value): string {
  if (!v) return "";
  const d = new Date(v);
  if (Number.isNaN(d.getTime())) return String(v);
  const p = parts(d, tz);
  return `${p.year}/${p.month}/${p.day} ${p.hour}:${p.minute}:${p.second}`;
}

/** `2019/11/21`. */
export function formatDate(v: string | null | undefined, tz = timeZone.value): string {
  return formatTime(v, tz).slice(0, 10);
}

const numbers = new Intl.NumberFormat("en-US");
/** 1234567 → `1,234,567`. */
export function formatPoints(v: number | null | undefined): string {
  return v === null || v === undefined ? "" : numbers.format(v);
}

/** Fen → `¥12.30`. */
export function formatFen(v: number | null | undefined): string {
  if (v === null || v === undefined) return "";
  return "¥" + (v / 100).toFixed(2);
}

/** Minutes east of UTC of `tz` at instant `at`. */
function offsetMinutes(tz: string, at: Date): number {
  const p = parts(at, tz);
  const asUtc = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second);
  return Math.round((asUtc - at.getTime()) / 60000);
}

/**
 * `2019-11-21` (a wall-clock date in `tz`) plus `hh:mm:ss` → the RFC 3339 UTC instant,
 * e.g. for a filter's from/to.
 */
export function zonedToIso(date: string, time = "00:00:00", tz = timeZone.value): string {
  const [y, m, d] = date.split("-").map(Number);
  const [hh, mm, ss] = time.split(":").map(Number);
  const guess = Date.UTC(y, m - 1, d, hh, mm, ss);
  let t = guess - offsetMinutes(tz, new Date(guess)) * 60000;
  t = guess - offsetMinutes(tz, new Date(t)) * 60000;
  return new Date(t).toISOString();
}

/** An instant → `YYYY-MM-DDTHH:mm:ss` wall-clock in `tz` (for date-time pickers). */
export function isoToZoned(v: string | null | undefined, tz = timeZone.value): string {
  if (!v) return "";
  const p = parts(new Date(v), tz);
  return `${p.year}-${p.month}-${p.day}T${p.hour}:${p.minute}:${p.second}`;
}

/** `YYYY-MM-DDTHH:mm:ss` wall-clock in `tz` → RFC 3339 UTC (null for ""). */
export function zonedDateTimeToIso(v: string | null | undefined, tz = timeZone.value): string | null {
  if (!v) return null;
  const [date, time = "00:00:00"] = v.split("T");
  return zonedToIso(date, time, tz);
}

/** Mainland mobiles read better without +86. */
export function formatPhone(v: string | null | undefined): string {
  return v ? v.replace(/^\+86(1\d{10})$/, "$1") : "";
}
