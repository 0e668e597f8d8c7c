// Fails when the catalogues disagree or the UI carries text of its own:
//  1. every key of src/i18n/zh-CN.json is in en.json and the other way round (no
//     empty messages either);
//  2. every key the code uses literally (t("a.b"), $t('a.b'), te(...)) is in both, and
//     every prefix of a built key (t("roles." + r)) names a group in both;
//  3. no template text or static label/placeholder/title/alt attribute with letters or
//     Chinese characters (they belong in the catalogues);
//  4. no Chinese characters in script code, except on lines marked `i18n-ignore`
//     (data such as carrier names).
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join, relative, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "vue/compiler-sfc";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const src = join(root, "src");
const problems = [];
const catalogues = { "zh-CN": load("zh-CN"), en: load("en") };

function load(locale) {
  return JSON.parse(readFileSync(join(src, "i18n", `${locale}.json`), "utf8"));
}
function flatten(obj, prefix = "", out = new Map()) {
  for (const [k, v] of Object.entries(obj)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v && typeof v === "object") {
      out.set(key, "group");
      flatten(v, key, out);
    } else out.set(key, v);
  }
  return out;
}
const flat = Object.fromEntries(Object.entries(catalogues).map(([l, c]) => [l, flatten(c)]));

// 1. Same keys in both, none empty.
for (const [a, b] of [["zh-CN", "en"], ["en", "zh-CN"]]) {
  for (const [k, v] of flat[a]) {
    if (!flat[b].has(k)) problems.push(`${b}.json lacks "${k}" (present in ${a}.json)`);
    else if ((v === "group") !== (flat[b].get(k) === "group")) problems.push(`"${k}" is a group in one catalogue and a message in the other`);
    if (v !== "group" && (typeof v !== "string" || !v.trim())) problems.push(`${a}.json: "${k}" is empty`);
  }
}

function files(dir) {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : [p];
  });
}

const ATTRS = new Set(["label", "placeholder", "title", "alt", "aria-label", "start-placeholder", "end-placeholder", "content", "description", "empty-text", "active-text", "inactive-text", "confirm-button-text", "cancel-button-text", "text"]);
const WORDY = /[A-Za-z\u3400-\u9fff]/;
const CJK = /[\u3400-\u9fff\uff00-\uffef]/;

function walk(node, file, visit) {
  visit(node, file);
  for (const c of node.children ?? []) walk(c, file, visit);
  for (const b of node.branches ?? []) walk(b, file, visit);
}

for (const file of files(src)) {
  const rel = relative(root, file);
  if (!/\.(vue|ts)$/.test(file) || file.endsWith(".d.ts")) continue;
  const text = readFileSync(file, "utf8");
  // 2. Keys used in code.
  for (const m of text.matchAll(/\b(?:\$t|t|te)\(\s*(["'`])([^"'`$]+)\1\s*([,)+])/g)) {
    const key = m[2];
    const built = m[3] === "+";
    for (const l of Object.keys(flat)) {
      if (built) {
        const group = key.replace(/\.$/, "");
        if (flat[l].get(group) !== "group") problems.push(`${rel}: built key "${key}…" has no group "${group}" in ${l}.json`);
      } else if (!flat[l].has(key) || flat[l].get(key) === "group") {
        problems.push(`${rel}: "${key}" is missing in ${l}.json`);
      }
    }
  }
  // 3 and 4.
  let scripts = [text];
  if (file.endsWith(".vue")) {
    const { descriptor, errors } = parse(text, { filename: file });
    for (const e of errors) problems.push(`${rel}: ${e.message ?? e}`);
    scripts = [descriptor.script?.content ?? "", descriptor.scriptSetup?.content ?? ""];
    if (descriptor.template?.ast) {
      walk(descriptor.template.ast, rel, (node) => {
        if (node.type === 2 && WORDY.test(node.content)) {
          problems.push(`${rel}:${node.loc.start.line}: text "${node.content.trim()}" belongs in the i18n catalogues`);
        }
        if (node.type === 1) {
          for (const p of node.props ?? []) {
            if (p.type === 6 && ATTRS.has(p.name) && p.value && WORDY.test(p.value.content)) {
              problems.push(`${rel}:${p.loc.start.line}: ${p.name}="${p.value.content}" belongs in the i18n catalogues`);
            }
          }
        }
      });
    }
  }
  for (const s of scripts) {
    for (const line of s.split("\n")) {
      if (CJK.test(line) && !line.includes("i18n-ignore") && !line.trim().startsWith("//") && !line.trim().startsWith("*")) {
        problems.push(`${rel}: Chinese text in code belongs in the catalogues: ${line.trim().slice(0, 80)}`);
      }
    }
  }
}

if (problems.length) {
  console.error(`i18n check: ${problems.length} problem(s)`);
  for (const p of problems) console.error("  " + p);
  process.exit(1);
}
console.log(`i18n check: ${flat["zh-CN"].size} keys in zh-CN and en, templates clean`);
