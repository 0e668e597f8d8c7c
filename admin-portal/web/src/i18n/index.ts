// vue-i18n with the catalogues in zh-CN.json and en.json (`npm run check:i18n` fails
// when a key is missing in either, or a template carries text of its own).
import { createI18n } from "vue-i18n";
import { ref, type Ref } from "vue";
import zhCN from "./zh-CN.json";
import en from "./en.json";

export type Locale = "zh-CN" | "en";
export const LOCALES: Locale[] = ["zh-CN", "en"];
const KEY = "pm.portal.locale";

function initial(): Locale {
  const stored = localStorage.getItem(KEY);
  return stored === "en" || stored === "zh-CN" ? stored : "zh-CN";
}

type Messages = typeof zhCN;

export const i18n = createI18n<[Messages], Locale>({
  legacy: false,
  locale: initial(),
  fallbackLocale: "zh-CN",
  messages: { "zh-CN": zhCN, en: en as Messages },
  missingWarn: false,
  fallbackWarn: false,
});

export const locale = ref<Locale>(initial());

export function setLocale(l: Locale) {
  locale.value = l;
  (i18n.global.locale as unknown as Ref<Locale>).value = l;
  localStorage.setItem(KEY, l);
  document.documentElement.lang = l;
}
document.documentElement.lang = initial();

export const t = i18n.global.t;
