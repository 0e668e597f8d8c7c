// Every screen is a URL under /portal/ (history mode; the server answers index.html
// for deep links). List filters and the page live in the query string. A screen names
// its audience and the permission it needs: menus and navigation both follow them.
import { createRouter, createWebHistory, type RouteRecordRaw, type RouteLocationRaw } from "vue-router";
import { session, me, can, whenSessionEnds, type Audience, type Permission } from "./session";
import { loadMe, meError } from "./me";
import { SessionEnded } from "./api/client";

declare module "vue-router" {
  interface RouteMeta {
    public?: boolean;
    audience?: Audience;
    perm?: Permission;
    /** i18n key of the screen's title (and menu label). */
    title?: string;
    /** Shown in the menu. */
    menu?: boolean;
    icon?: string;
  }
}

const Shell = () => import("./layouts/Shell.vue");

export const screens: RouteRecordRaw[] = [
  // Merchant staff
  { path: "dashboard", name: "dashboard", component: () => import("./views/Dashboard.vue"), meta: { audience: "staff", title: "menu.dashboard", menu: true, icon: "Odometer" } },
  { path: "products", name: "products", component: () => import("./views/Products.vue"), meta: { audience: "staff", perm: "catalog_read", title: "menu.products", menu: true, icon: "Goods" } },
  { path: "orders", name: "orders", component: () => import("./views/Orders.vue"), meta: { audience: "staff", perm: "orders_read", title: "menu.orders", menu: true, icon: "Tickets" } },
  { path: "members", name: "members", component: () => import("./views/Members.vue"), meta: { audience: "staff", perm: "members_read", title: "menu.members", menu: true, icon: "User" } },
  { path: "messages", name: "messages", component: () => import("./views/Messages.vue"), meta: { audience: "staff", perm: "members_read", title: "menu.messages", menu: true, icon: "ChatDotRound" } },
  { path: "tasks", name: "tasks", component: () => import("./views/Tasks.vue"), meta: { audience: "staff", perm: "rules_read", title: "menu.tasks", menu: true, icon: "Trophy" } },
  { path: "checkin", name: "checkin", component: () => import("./views/Checkin.vue"), meta: { audience: "staff", perm: "rules_read", title: "marketing.checkinMenu", menu: true, icon: "Calendar" } },
  { path: "lottery", name: "lottery", component: () => import("./views/Lottery.vue"), meta: { audience: "staff", perm: "catalog_read", title: "marketing.lotteryMenu", menu: true, icon: "Present" } },
  { path: "flash-sales", name: "flash-sales", component: () => import("./views/FlashSales.vue"), meta: { audience: "staff", perm: "catalog_read", title: "marketing.flashMenu", menu: true, icon: "AlarmClock" } },
  { path: "content", name: "content", component: () => import("./views/Content.vue"), meta: { audience: "staff", perm: "content_read", title: "content.menu", menu: true, icon: "Picture" } },
  { path: "analytics", name: "analytics", component: () => import("./views/Analytics.vue"), meta: { audience: "staff", perm: "reports_read", title: "analytics.title", menu: true, icon: "DataAnalysis" } },
  { path: "finance", name: "finance", component: () => import("./views/Finance.vue"), meta: { audience: "staff", perm: "finance_read", title: "menu.finance", menu: true, icon: "Money" } },
  { path: "rules", name: "rules", component: () => import("./views/Rules.vue"), meta: { audience: "staff", perm: "rules_read", title: "menu.rules", menu: true, icon: "MagicStick" } },
  { path: "rules/:id", name: "rule", component: () => import("./views/RuleEditor.vue"), meta: { audience: "staff", perm: "rules_read", title: "menu.rule" } },
  { path: "staff", name: "staff", component: () => import("./views/Staff.vue"), meta: { audience: "staff", perm: "staff_read", title: "menu.staff", menu: true, icon: "Avatar" } },
  { path: "api-keys", name: "api-keys", component: () => import("./views/ApiKeys.vue"), meta: { audience: "staff", perm: "api_keys_read", title: "menu.apiKeys", menu: true, icon: "Key" } },
  { path: "webhooks", name: "webhooks", component: () => import("./views/Webhooks.vue"), meta: { audience: "staff", perm: "webhooks_manage", title: "menu.webhooks", menu: true, icon: "Link" } },
  { path: "audit-log", name: "audit-log", component: () => import("./views/AuditLog.vue"), meta: { audience: "staff", perm: "audit_read", title: "menu.auditLog", menu: true, icon: "Document" } },
  { path: "settings", name: "settings", component: () => import("./views/Settings.vue"), meta: { audience: "staff", perm: "settings_read", title: "menu.settings", menu: true, icon: "Setting" } },
  // Alliance admin
  { path: "alliance", name: "alliance", component: () => import("./views/alliance/AllianceOverview.vue"), meta: { audience: "alliance", title: "menu.alliance", menu: true, icon: "Connection" } },
  { path: "alliance/budgets", name: "alliance-budgets", component: () => import("./views/alliance/Budgets.vue"), meta: { audience: "alliance", title: "menu.budgets", menu: true, icon: "Wallet" } },
  { path: "alliance/settlement", name: "alliance-settlement", component: () => import("./views/alliance/Settlement.vue"), meta: { audience: "alliance", title: "menu.settlement", menu: true, icon: "Money" } },
  { path: "alliance/rules", name: "alliance-rules", component: () => import("./views/alliance/AllianceRules.vue"), meta: { audience: "alliance", title: "menu.allianceRules", menu: true, icon: "Tickets" } },
  { path: "alliance/rules/:id", name: "alliance-rule", component: () => import("./views/alliance/AllianceRuleEditor.vue"), meta: { audience: "alliance", title: "menu.allianceRule" } },
  { path: "alliance/webhooks", name: "alliance-webhooks", component: () => import("./views/alliance/AllianceWebhooks.vue"), meta: { audience: "alliance", title: "menu.webhooks", menu: true, icon: "Link" } },
  // Platform operator
  { path: "platform/tenants", name: "platform-tenants", component: () => import("./views/platform/Tenants.vue"), meta: { audience: "platform", title: "menu.tenants", menu: true, icon: "Shop" } },
  { path: "platform/alliances", name: "platform-alliances", component: () => import("./views/platform/Alliances.vue"), meta: { audience: "platform", title: "menu.alliances", menu: true, icon: "Connection" } },
  { path: "platform/recorded-messages", name: "platform-recorded-messages", component: () => import("./views/platform/RecordedMessages.vue"), meta: { audience: "platform", title: "menu.recordedMessages", menu: true, icon: "Message" } },
  { path: "platform/health", name: "platform-health", component: () => import("./views/platform/Health.vue"), meta: { audience: "platform", title: "health.menu", menu: true, icon: "FirstAidKit" } },
  // Any audience
  { path: "forbidden", name: "forbidden", component: () => import("./views/Forbidden.vue"), meta: { title: "menu.forbidden" } },
];

const routes: RouteRecordRaw[] = [
  { path: "/login", name: "login", component: () => import("./views/Login.vue"), meta: { public: true, title: "login.title" } },
  { path: "/", component: Shell, children: [{ path: "", name: "home", redirect: () => homeOf() }, ...screens] },
  { path: "/:rest(.*)*", name: "not-found", component: () => import("./views/NotFound.vue"), meta: { public: true, title: "menu.notFound" } },
];

/** The first screen of the signed-in audience that its permissions allow. */
export function homeOf(): RouteLocationRaw {
  const s = session.value;
  if (!s) return { name: "login" };
  const first = screens.find((r) => r.meta?.menu && r.meta.audience === s.audience && can(r.meta.perm));
  return { name: (first?.name as string) ?? "forbidden" };
}

export const router = createRouter({
  history: createWebHistory("/portal/"),
  routes,
  scrollBehavior: () => ({ top: 0 }),
});

router.beforeEach(async (to) => {
  if (to.meta.public) return true;
  const s = session.value;
  if (!s) return { name: "login", query: to.fullPath !== "/" ? { redirect: to.fullPath } : {} };
  if (s.audience === "staff" && !me.value && !meError.value) {
    try {
      await loadMe();
    } catch (e) {
      if (e instanceof SessionEnded) return { name: "login", query: { redirect: to.fullPath, ended: "1" } };
      // Shown by the shell (e.g. a credential of another mall); no screen is usable.
      return to.name === "forbidden" ? true : { name: "forbidden" };
    }
  }
  if (to.meta.audience && to.meta.audience !== s.audience) return homeOf();
  if (s.audience === "staff" && meError.value && to.name !== "forbidden") return { name: "forbidden" };
  if (!can(to.meta.perm)) return { name: "forbidden" };
  return true;
});

whenSessionEnds((reason) => {
  const current = router.currentRoute.value;
  const query: Record<string, string> = reason === "expired" ? { ended: "1" } : {};
  if (reason === "expired" && !current.meta.public) query.redirect = current.fullPath;
  void router.replace({ name: "login", query });
});
