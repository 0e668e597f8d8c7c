// The rules of a mall or of an alliance, behind one set of calls, so that one list
// (components/rules/RuleList.vue) and one editor (components/rules/RuleEditor.vue) serve
// either, as webhookOwners.ts does for webhooks.
import { api, unwrap, type Schemas } from "@/api/client";
import { can, session } from "@/session";
import { tenant } from "@/me";

type Rule = Schemas["Rule"];
/** A dry run as the editor asks for it; `mall` is where an alliance rule runs. */
export type DryRunBody = Omit<Schemas["DryRun"], "script" | "rule_id"> & { script: string; mall?: string };
/** A dry run's answer; an alliance's adds what the mall's issuing budget would be charged. */
export type DryRunAnswer = Schemas["DryRunResult"] & { budget?: Schemas["BudgetCharge"] };

export interface RuleOwner {
  kind: "mall" | "alliance";
  /** Route names of the list and of the editor. */
  routes: { list: string; editor: string };
  /** Whether this person may change the rules. */
  writable: () => boolean;
  /** Backtests over recorded events (a mall's only). */
  backtests: boolean;
  /** The script and parameters a new rule starts with, and its event. */
  starter: (currency: string | null) => { script: string; params: string; event_type: string };
  /** The malls a dry run may run in and the one currency rules may award (an alliance's). */
  info: () => Promise<{ malls: { slug: string; name: string }[]; currency: string | null }>;
  list: (archived: boolean) => Promise<Rule[]>;
  get: (id: number) => Promise<Schemas["RuleDetail"]>;
  create: (body: Schemas["NewRule"]) => Promise<Rule>;
  patch: (id: number, body: Schemas["RulePatch"]) => Promise<Rule>;
  setScript: (id: number, script: string) => Promise<Rule>;
  setParams: (id: number, params: Schemas["JsonObject"]) => Promise<Rule>;
  rollback: (id: number, version: number) => Promise<Rule>;
  rollbackParams: (id: number, version: number) => Promise<Rule>;
  archive: (id: number) => Promise<Rule>;
  restore: (id: number) => Promise<Rule>;
  compile: (script: string) => Promise<Schemas["CompileCheck"]>;
  dryRun: (body: DryRunBody) => Promise<DryRunAnswer>;
}

/** The mall's rules (merchant staff with `rules_read`; `rules_write` to change them). */
export function mallRules(): RuleOwner {
  const here = () => ({ params: { path: { tenant: tenant() } } });
  const at = (id: number) => ({ params: { path: { tenant: tenant(), id } } });
  return {
    kind: "mall",
    routes: { list: "rules", editor: "rule" },
    writable: () => can("rules_write"),
    backtests: true,
    starter: () => ({
      script: '// event.type, event.data, member.*, params.*\n// Return a list of effects, e.g. award("points", 10, "why"), or deny("why").\n[award("points", params.points, "thanks")]\n',
      params: '{"points": 10}',
      event_type: "checked_in",
    }),
    info: async () => ({ malls: [], currency: null }),
    list: (archived) => unwrap(api.GET("/v1/tenants/{tenant}/staff/rules", { params: { path: { tenant: tenant() }, query: { archived } } })),
    get: (id) => unwrap(api.GET("/v1/tenants/{tenant}/staff/rules/{id}", at(id))),
    create: (body) => unwrap(api.POST("/v1/tenants/{tenant}/staff/rules", { ...here(), body })),
    patch: (id, body) => unwrap(api.PATCH("/v1/tenants/{tenant}/staff/rules/{id}", { ...at(id), body })),
    setScript: (id, script) => unwrap(api.PUT("/v1/tenants/{tenant}/staff/rules/{id}/script", { ...at(id), body: { script } })),
    setParams: (id, params) => unwrap(api.PUT("/v1/tenants/{tenant}/staff/rules/{id}/params", { ...at(id), body: { params } })),
    rollback: (id, version) => unwrap(api.POST("/v1/tenants/{tenant}/staff/rules/{id}/rollback", { ...at(id), body: { version } })),
    rollbackParams: (id, version) => unwrap(api.POST("/v1/tenants/{tenant}/staff/rules/{id}/params/rollback", { ...at(id), body: { version } })),
    archive: (id) => unwrap(api.POST("/v1/tenants/{tenant}/staff/rules/{id}/archive", at(id))),
    restore: (id) => unwrap(api.POST("/v1/tenants/{tenant}/staff/rules/{id}/restore", at(id))),
    compile: (script) => unwrap(api.POST("/v1/tenants/{tenant}/staff/rules/compile", { ...here(), body: { script } })),
    dryRun: ({ mall: _mall, ...body }) => unwrap(api.POST("/v1/tenants/{tenant}/staff/rules/dry-run", { ...here(), body })),
  };
}

/** The alliance-wide rules (its admins): shared currency only, run in every mall. */
export function allianceRules(): RuleOwner {
  const alliance = () => session.value!.scope;
  const here = () => ({ params: { path: { alliance: alliance() } } });
  const at = (id: number) => ({ params: { path: { alliance: alliance(), id } } });
  return {
    kind: "alliance",
    routes: { list: "alliance-rules", editor: "alliance-rule" },
    writable: () => true,
    backtests: false,
    starter: (currency) => ({
      script: `// event.type, event.data, member.*, params.*\n// Only the shared currency, named as a literal: award("${currency}", n, "why").\n[award("${currency}", params.points, "thanks")]\n`,
      params: '{"points": 10}',
      event_type: "registered",
    }),
    info: async () => {
      const o = await unwrap(api.GET("/v1/alliances/{alliance}", here()));
      return { malls: o.merchants.map((m) => ({ slug: m.slug, name: m.name })), currency: o.alliance.currency_code };
    },
    list: (archived) => unwrap(api.GET("/v1/alliances/{alliance}/rules", { params: { path: { alliance: alliance() }, query: { archived } } })),
    get: (id) => unwrap(api.GET("/v1/alliances/{alliance}/rules/{id}", at(id))),
    create: (body) => unwrap(api.POST("/v1/alliances/{alliance}/rules", { ...here(), body })),
    patch: (id, body) => unwrap(api.PATCH("/v1/alliances/{alliance}/rules/{id}", { ...at(id), body })),
    setScript: (id, script) => unwrap(api.PUT("/v1/alliances/{alliance}/rules/{id}/script", { ...at(id), body: { script } })),
    setParams: (id, params) => unwrap(api.PUT("/v1/alliances/{alliance}/rules/{id}/params", { ...at(id), body: { params } })),
    rollback: (id, version) => unwrap(api.POST("/v1/alliances/{alliance}/rules/{id}/rollback", { ...at(id), body: { version } })),
    rollbackParams: (id, version) => unwrap(api.POST("/v1/alliances/{alliance}/rules/{id}/params/rollback", { ...at(id), body: { version } })),
    archive: (id) => unwrap(api.POST("/v1/alliances/{alliance}/rules/{id}/archive", at(id))),
    restore: (id) => unwrap(api.POST("/v1/alliances/{alliance}/rules/{id}/restore", at(id))),
    compile: (script) => unwrap(api.POST("/v1/alliances/{alliance}/rules/compile", { ...here(), body: { script } })),
    dryRun: ({ mall, ...body }) => unwrap(api.POST("/v1/alliances/{alliance}/rules/dry-run", { ...here(), body: { ...body, mall: mall ?? "" } })),
  };
}
