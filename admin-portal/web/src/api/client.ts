// The typed API client (openapi-fetch over the generated `paths`), with the session's
// bearer token, one refresh on 401 where the audience has a refresh route, and errors
// turned into ApiError (status, stable code, message, per-field messages of a 422).
import createClient from "openapi-fetch";
import type { components, paths, JsonValue } from "./schema";
import { session, refreshSession, endSession } from "@/session";

export type Schemas = components["schemas"];
export type { JsonValue };
export type JsonObject = Schemas["JsonObject"];

/** Whether parsed JSON is an object (not an array, null or a scalar). */
export const isJsonObject = (v: JsonValue): v is JsonObject => typeof v === "object" && v !== null && !Array.isArray(v);

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** 422: field → message (`details.fields` of the error body). */
    readonly fields: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** Raised when the session ended (refresh refused or impossible): the app signs out. */
export class SessionEnded extends ApiError {}

function fieldsOf(details: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  const list = (details as { fields?: unknown } | null)?.fields;
  if (Array.isArray(list)) {
    for (const f of list) {
      if (f && typeof f.field === "string" && typeof f.message === "string") {
        out[f.field] = out[f.field] ? `${out[f.field]}; ${f.message}` : f.message;
      }
    }
  }
  return out;
}

/** An ApiError from a failed response (its JSON error body when there is one). */
export async function errorOf(res: Response, body?: unknown): Promise<ApiError> {
  let data = body;
  if (data === undefined) {
    try {
      data = await res.clone().json();
    } catch {
      data = null;
    }
  }
  const e = (data as { error?: { code?: string; message?: string; details?: unknown } } | null)?.error;
  return new ApiError(res.status, e?.code || `http_${res.status}`, e?.message || `${res.status} ${res.statusText}`, fieldsOf(e?.details));
}

/** fetch with the session's token; on 401 refreshes once (if it can) and retries. */
export async function authedFetch(input: Request): Promise<Response> {
  const retry = input.clone();
  const s = session.value;
  if (s) input.headers.set("Authorization", `Bearer ${s.access_token}`);
  const res = await fetch(input);
  if (res.status !== 401 || !s) return res;
  if (await refreshSession(s)) {
    retry.headers.set("Authorization", `Bearer ${session.value!.access_token}`);
    const again = await fetch(retry);
    if (again.status !== 401) return again;
  }
  const err = await errorOf(res);
  endSession("expired");
  throw new SessionEnded(401, err.code, err.message);
}

export const api = createClient<paths>({ baseUrl: "", fetch: authedFetch });

/** The data of an openapi-fetch answer, or throws its ApiError. */
export async function unwrap<T>(p: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  const { data, error, response } = await p;
  if (!response.ok) throw await errorOf(response, error ?? null);
  return data as T;
}

/** Raw call for what the typed client cannot express (binary uploads, CSV downloads). */
export async function rawFetch(path: string, init: RequestInit = {}): Promise<Response> {
  const res = await authedFetch(new Request(path, init));
  if (!res.ok) throw await errorOf(res);
  return res;
}

/** Downloads what `path` answers (a CSV export) as the file `name`. */
export async function download(path: string, name: string): Promise<void> {
  const res = await rawFetch(path);
  const a = document.createElement("a");
  a.href = URL.createObjectURL(await res.blob());
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}

/** A fresh Idempotency-Key for a write that moves points. */
export function idempotencyKey(): string {
  // crypto.randomUUID exists in secure contexts only; getRandomValues everywhere.
  const b = crypto.getRandomValues(new Uint8Array(16));
  return "portal-" + Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}
