// Gathers the licence of every package bundled into code.js (the lock file's non-development packages)
// into one text file that ships beside the bundle: node licenses.mjs OUT
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const lock = JSON.parse(readFileSync("package-lock.json", "utf8"));
const out = [
  "Third-party software in code.js (the studio's code view), bundled from npm with esbuild.",
  "Rebuild: cd frontend && npm ci && npm run build (see docs/STUDIO.md).",
  "",
];
const names = Object.keys(lock.packages).filter((p) => p.startsWith("node_modules/") && !lock.packages[p].dev).sort();
for (const path of names) {
  const meta = JSON.parse(readFileSync(join(path, "package.json"), "utf8"));
  const file = readdirSync(path).find((f) => /^(licen[cs]e|copying)(\.|$)/i.test(f));
  if (!file) { throw new Error(`${meta.name} ships no licence file`); }
  out.push("=".repeat(100), `${meta.name} ${meta.version} (${meta.license})`, meta.homepage || "", "-".repeat(100));
  out.push(readFileSync(join(path, file), "utf8").trim(), "");
}
writeFileSync(process.argv[2], out.join("\n") + "\n");
console.log(`${names.length} licences written to ${process.argv[2]}`);
