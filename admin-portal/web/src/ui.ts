// Messages, confirmations and form errors, the same way on every screen.
import { ElMessage, ElMessageBox } from "element-plus";
import "element-plus/es/components/message/style/css";
import "element-plus/es/components/message-box/style/css";
import { ref } from "vue";
import { ApiError, SessionEnded } from "./api/client";
import { t } from "./i18n";

export function toastOk(message: string) {
  ElMessage({ type: "success", message, grouping: true });
}

export function toastError(e: unknown) {
  if (e instanceof SessionEnded) return;
  ElMessage({ type: "error", message: e instanceof Error ? e.message : String(e), grouping: true, duration: 6000 });
}

/** Asks before a destructive action; resolves true when confirmed. */
export async function confirmDanger(message: string, title = t("common.confirmTitle"), confirmText = t("common.confirm")): Promise<boolean> {
  try {
    await ElMessageBox.confirm(message, title, {
      type: "warning",
      confirmButtonText: confirmText,
      cancelButtonText: t("common.cancel"),
      confirmButtonClass: "el-button--danger",
    });
    return true;
  } catch {
    return false;
  }
}

/**
 * Field errors of a form: a 422's `details.fields` go onto the fields they name
 * (`errors.value.name`), anything else into `general`.
 */
export function useFormErrors() {
  const errors = ref<Record<string, string>>({});
  const general = ref("");
  function clear() {
    errors.value = {};
    general.value = "";
  }
  /** Shows `e` on the form; returns true when it was a field error. */
  function show(e: unknown, known: string[] = []): boolean {
    clear();
    if (e instanceof SessionEnded) return false;
    if (e instanceof ApiError && Object.keys(e.fields).length) {
      const onFields: Record<string, string> = {};
      const rest: string[] = [];
      for (const [f, m] of Object.entries(e.fields)) {
        const key = known.length === 0 || known.includes(f) ? f : known.find((k) => f.startsWith(k + ".") || f.startsWith(k + "["));
        if (key) onFields[key] = onFields[key] ? `${onFields[key]}; ${m}` : m;
        else rest.push(`${f}: ${m}`);
      }
      errors.value = onFields;
      general.value = rest.length ? rest.join("; ") : "";
      return true;
    }
    general.value = e instanceof Error ? e.message : String(e);
    return false;
  }
  return { errors, general, clear, show };
}
