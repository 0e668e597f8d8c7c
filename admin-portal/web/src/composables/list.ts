// One shape for every list: filters and the page in the query string, cursor paging
// (the API pages with opaque cursors; the page number and its cursor go in the URL so a
// deep link or a reload shows the same page), loading / error / empty states, and no
// stale rows after an error.
import { computed, ref, shallowRef, watch, type Ref } from "vue";
import { useRoute, useRouter, type LocationQuery } from "vue-router";
import { ApiError, SessionEnded } from "@/api/client";

export type Query = Record<string, string>;

function plain(q: LocationQuery): Query {
  const out: Query = {};
  for (const [k, v] of Object.entries(q)) {
    const s = Array.isArray(v) ? v[0] : v;
    if (typeof s === "string" && s !== "") out[k] = s;
  }
  return out;
}

/** The route's query as strings, and a way to change it. */
export function useQuery() {
  const route = useRoute();
  const router = useRouter();
  const query = computed(() => plain(route.query));
  /** Merges `patch` into the query (empty values removed); filters reset the page. */
  function set(patch: Record<string, string | number | undefined | null>, keepPage = false) {
    const next: Query = { ...query.value };
    if (!keepPage) {
      delete next.page;
      delete next.cursor;
    }
    for (const [k, v] of Object.entries(patch)) {
      if (v === undefined || v === null || v === "") delete next[k];
      else next[k] = String(v);
    }
    return router.push({ query: next });
  }
  return { query, set };
}

export interface Page<T> {
  items: T[];
  next_cursor?: string | null;
}

/** Most pages walked to reach a page given without its cursor (?page=N by hand). */
const WALK_MAX = 50;

/**
 * A paged list driven by the route: `filterKeys` name the query parameters that are
 * filters (a change goes back to page 1), `load` fetches one page.
 */
export function usePagedList<T>(filterKeys: string[], load: (q: Query, cursor: string | undefined) => Promise<Page<T>>) {
  const { query, set } = useQuery();
  const router = useRouter();
  const items = shallowRef<T[]>([]) as Ref<T[]>;
  const loading = ref(false);
  const error = ref<ApiError | Error | null>(null);
  const nextCursor = ref<string | null>(null);
  const page = computed(() => Math.max(1, Number.parseInt(query.value.page || "1", 10) || 1));
  const filterKey = computed(() => JSON.stringify(filterKeys.map((k) => query.value[k] ?? "")));
  // Cursor of each page for the current filters (page 1 has none).
  let cursors = new Map<number, string | undefined>();
  let cursorsFor = "";
  let seq = 0;

  async function fetchPage() {
    const my = ++seq;
    const q = query.value;
    if (cursorsFor !== filterKey.value) {
      cursors = new Map([[1, undefined]]);
      cursorsFor = filterKey.value;
    }
    loading.value = true;
    error.value = null;
    try {
      let cursor = page.value > 1 ? q.cursor || cursors.get(page.value) : undefined;
      if (page.value > 1 && !cursor) {
        // Walk from the first page to the one asked for; past the last page (or the
        // walk's bound), show the last page reached instead.
        let c: string | undefined;
        let reached = 1;
        for (let p = 1; p < Math.min(page.value, WALK_MAX + 1); p++) {
          const r = await load(q, c);
          if (my !== seq) return;
          if (!r.next_cursor) break;
          c = r.next_cursor;
          reached = p + 1;
          cursors.set(reached, c);
        }
        if (reached < page.value) {
          loading.value = false;
          await router.replace({ query: { ...q, page: reached > 1 ? String(reached) : undefined, cursor: cursors.get(reached) } });
          return;
        }
        cursor = cursors.get(page.value);
      }
      if (cursor) cursors.set(page.value, cursor);
      const r = await load(q, cursor);
      if (my !== seq) return;
      items.value = r.items;
      nextCursor.value = r.next_cursor ?? null;
      if (r.next_cursor) cursors.set(page.value + 1, r.next_cursor);
    } catch (e) {
      if (my !== seq) return;
      // Never leave the previous rows looking current.
      items.value = [];
      nextCursor.value = null;
      if (!(e instanceof SessionEnded)) error.value = e as Error;
    } finally {
      if (my === seq) loading.value = false;
    }
  }

  watch(() => [filterKey.value, page.value, query.value.cursor], fetchPage, { immediate: true });

  function goTo(p: number) {
    if (p <= 1) return set({ page: undefined, cursor: undefined }, true);
    return set({ page: p, cursor: cursors.get(p) }, true);
  }

  return {
    query,
    set,
    items,
    loading,
    error,
    page,
    hasNext: computed(() => !!nextCursor.value),
    next: () => goTo(page.value + 1),
    prev: () => goTo(page.value - 1),
    reload: fetchPage,
  };
}

/** A single resource (or a whole small list) with loading and error state. */
export function useResource<T>(load: () => Promise<T>, initial: T) {
  const data = shallowRef<T>(initial) as Ref<T>;
  const loading = ref(false);
  const error = ref<ApiError | Error | null>(null);
  let seq = 0;
  async function reload() {
    const my = ++seq;
    loading.value = true;
    error.value = null;
    try {
      const v = await load();
      if (my === seq) data.value = v;
    } catch (e) {
      if (my !== seq) return;
      data.value = initial;
      if (!(e instanceof SessionEnded)) error.value = e as Error;
    } finally {
      if (my === seq) loading.value = false;
    }
  }
  return { data, loading, error, reload };
}
