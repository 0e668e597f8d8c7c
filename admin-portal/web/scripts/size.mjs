// Prints what the browser downloads (gzipped at level 9, as the server sends it) for the
// sign-in page and for the signed-in shell with the dashboard, from the build manifest
// (../dist/.vite/manifest.json). `npm run size`; fails when the shell is over budget.
import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const BUDGET_KB = 300;
const dist = join(dirname(fileURLToPath(import.meta.url)), "../../dist");
const manifest = JSON.parse(readFileSync(join(dist, ".vite/manifest.json"), "utf8"));

/** Files a chunk needs before it runs: itself, its static imports and their CSS. */
function closure(key, out = new Set()) {
  const c = manifest[key];
  if (!c || out.has(c.file)) return out;
  out.add(c.file);
  for (const css of c.css ?? []) out.add(css);
  for (const i of c.imports ?? []) closure(i, out);
  return out;
}
const gz = (f) => gzipSync(readFileSync(join(dist, f)), { level: 9 }).length;
const kb = (n) => (n / 1024).toFixed(1);

function report(name, keys) {
  const files = new Set();
  for (const k of keys) closure(k, files);
  let raw = 0, zipped = 0;
  for (const f of files) {
    raw += readFileSync(join(dist, f)).length;
    zipped += gz(f);
  }
  console.log(`${name}: ${files.size} files, ${kb(raw)} KB, ${kb(zipped)} KB gzipped`);
  return zipped;
}

report("sign-in page", ["index.html", "src/views/Login.vue"]);
const shell = report("shell + dashboard", ["index.html", "src/layouts/Shell.vue", "src/views/Dashboard.vue"]);
for (const k of Object.keys(manifest).filter((k) => k.startsWith("src/views/") || k.includes("charts"))) {
  const c = manifest[k];
  console.log(`  lazy ${k}: ${kb(gz(c.file))} KB gzipped (own chunk)`);
}
if (shell / 1024 > BUDGET_KB) {
  console.error(`the shell is ${kb(shell)} KB gzipped, over the ${BUDGET_KB} KB budget`);
  process.exit(1);
}
