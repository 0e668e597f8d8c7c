// The webhook endpoints of a mall or of an alliance, behind one set of calls, so that one
// screen (components/WebhookEndpoints.vue) manages either.
import { api, unwrap, type Schemas } from "@/api/client";
import { tenant } from "@/me";
import { session } from "@/session";

type Body = Schemas["NewEndpoint"];
type Patch = Schemas["EndpointPatch"];
type Page = { limit: number; cursor?: string };

/** The mall's endpoints (merchant staff with `webhooks_manage`). */
export function mallWebhooks() {
  const at = (id: number) => ({ params: { path: { tenant: tenant(), id } } });
  return {
    list: () => unwrap(api.GET("/v1/tenants/{tenant}/staff/webhooks", { params: { path: { tenant: tenant() } } })),
    create: (body: Body) => unwrap(api.POST("/v1/tenants/{tenant}/staff/webhooks", { params: { path: { tenant: tenant() } }, body })),
    update: (id: number, body: Patch) => unwrap(api.PATCH("/v1/tenants/{tenant}/staff/webhooks/{id}", { ...at(id), body })),
    rotate: (id: number) => unwrap(api.POST("/v1/tenants/{tenant}/staff/webhooks/{id}/rotate-secret", at(id))),
    remove: (id: number) => unwrap(api.DELETE("/v1/tenants/{tenant}/staff/webhooks/{id}", at(id))),
    test: (id: number) => unwrap(api.POST("/v1/tenants/{tenant}/staff/webhooks/{id}/test", at(id))),
    deliveries: (id: number, query: Page) =>
      unwrap(api.GET("/v1/tenants/{tenant}/staff/webhooks/{id}/deliveries", { params: { path: { tenant: tenant(), id }, query } })),
    replay: (id: number) => unwrap(api.POST("/v1/tenants/{tenant}/staff/webhook-deliveries/{id}/replay", at(id))),
  };
}

/** The alliance's endpoints (its admins). */
export function allianceWebhooks(): WebhookOwner {
  const alliance = () => session.value!.scope;
  const at = (id: number) => ({ params: { path: { alliance: alliance(), id } } });
  return {
    list: () => unwrap(api.GET("/v1/alliances/{alliance}/webhooks", { params: { path: { alliance: alliance() } } })),
    create: (body: Body) => unwrap(api.POST("/v1/alliances/{alliance}/webhooks", { params: { path: { alliance: alliance() } }, body })),
    update: (id: number, body: Patch) => unwrap(api.PATCH("/v1/alliances/{alliance}/webhooks/{id}", { ...at(id), body })),
    rotate: (id: number) => unwrap(api.POST("/v1/alliances/{alliance}/webhooks/{id}/rotate-secret", at(id))),
    remove: (id: number) => unwrap(api.DELETE("/v1/alliances/{alliance}/webhooks/{id}", at(id))),
    test: (id: number) => unwrap(api.POST("/v1/alliances/{alliance}/webhooks/{id}/test", at(id))),
    deliveries: (id: number, query: Page) =>
      unwrap(api.GET("/v1/alliances/{alliance}/webhooks/{id}/deliveries", { params: { path: { alliance: alliance(), id }, query } })),
    replay: (id: number) => unwrap(api.POST("/v1/alliances/{alliance}/webhook-deliveries/{id}/replay", at(id))),
  };
}

export type WebhookOwner = ReturnType<typeof mallWebhooks>;
