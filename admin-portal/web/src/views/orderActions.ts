// What staff may do with an order in each state (the server's state machine refuses
// anything else with 409 illegal_transition).
import { ElMessageBox } from "element-plus";
import { api, unwrap, type Schemas } from "@/api/client";
import { tenant } from "@/me";
import { t } from "@/i18n";
import { toastError, toastOk } from "@/ui";

export type Order = Schemas["Order"];
export type OrderStatus = Schemas["Status"];
export const STATUSES: OrderStatus[] = ["pending_payment", "pending_review", "pending_shipment", "shipped", "completed", "cancelled", "refunded"];
/** Whether a string (from the URL) names an order status. */
export const isOrderStatus = (s: string | undefined): s is OrderStatus => STATUSES.includes(s as OrderStatus);

/** Common carriers in mainland China (data, not UI text: the names are what waybills say). */
export const CARRIERS = ["顺丰速运", "中通快递", "圆通速递", "韵达快递", "申通快递", "京东物流", "EMS", "邮政快递包裹", "极兔速递"]; // i18n-ignore

export const canApprove = (o: Order) => o.status === "pending_review";
export const canShip = (o: Order) => o.status === "pending_shipment";
export const canCancel = (o: Order) => ["pending_payment", "pending_review", "pending_shipment"].includes(o.status);
export const canRefund = (o: Order) => ["shipped", "completed"].includes(o.status);

export function statusTag(s: OrderStatus): "primary" | "success" | "warning" | "info" | "danger" {
  switch (s) {
    case "pending_payment":
    case "pending_review":
    case "pending_shipment":
      return "warning";
    case "shipped":
      return "primary";
    case "completed":
      return "success";
    case "cancelled":
      return "info";
    case "refunded":
      return "danger";
  }
}

export async function act(o: Order, action: "approve" | "ship" | "cancel" | "refund", body: Schemas["ActionBody"] = {}): Promise<Order> {
  return unwrap(
    api.POST("/v1/tenants/{tenant}/staff/orders/{id}/{action}", { params: { path: { tenant: tenant(), id: o.id, action } }, body }),
  );
}

/** Cancel or refund after a confirmation with an optional note; null when not done. */
export async function cancelOrRefund(o: Order, action: "cancel" | "refund"): Promise<Order | null> {
  let note = "";
  try {
    const r = await ElMessageBox.prompt(t(`orders.confirm_${action}`, { no: o.order_no }), t("common.confirmTitle"), {
      type: "warning",
      confirmButtonText: t(`orders.${action}`),
      cancelButtonText: t("common.cancel"),
      confirmButtonClass: "el-button--danger",
      inputPlaceholder: t("orders.notePlaceholder"),
      inputValidator: (v: string) => (v ?? "").length <= 500 || t("orders.noteTooLong"),
    });
    note = (r as { value: string }).value ?? "";
  } catch {
    return null;
  }
  try {
    const done = await act(o, action, note.trim() ? { note: note.trim() } : {});
    toastOk(t(`orders.${action}_ok`));
    return done;
  } catch (e) {
    toastError(e);
    return null;
  }
}

export async function approve(o: Order): Promise<Order | null> {
  try {
    const done = await act(o, "approve");
    toastOk(t("orders.approve_ok"));
    return done;
  } catch (e) {
    toastError(e);
    return null;
  }
}
