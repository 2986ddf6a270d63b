// Validates Flux Kustomizations against the CRD's own OpenAPI schema, as
// @kubernetes-models/flux-cd ships it (generated from Flux's CRDs).
//
//   node tests/flux-validate.mjs <node_modules dir> FILE...
//
// Every YAML document of every FILE must be a Flux Kustomization
// (kustomize.toolkit.fluxcd.io/v1) that passes the schema. Prints one
// `ok <file> <name>` line per document; exits 1 naming what fails.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [modules, ...files] = process.argv.slice(2);
if (!modules || files.length === 0) {
  console.error("usage: flux-validate.mjs <node_modules dir> FILE...");
  process.exit(2);
}
const load = (path) => import(pathToFileURL(join(modules, path)).href);
const YAML = await load("yaml/dist/index.js");
const { Kustomization } = await load(
  "@kubernetes-models/flux-cd/kustomize.toolkit.fluxcd.io/v1/Kustomization.js",
);

let failed = 0;
for (const file of files) {
  const docs = YAML.parseAllDocuments(readFileSync(file, "utf8"));
  for (const doc of docs) {
    if (doc.errors.length > 0) {
      console.error(`${file}: not YAML: ${doc.errors[0].message}`);
      failed++;
      continue;
    }
    const obj = doc.toJS();
    if (obj === null || obj === undefined) continue;
    const name = obj?.metadata?.name ?? "(no name)";
    if (obj.apiVersion !== Kustomization.apiVersion || obj.kind !== Kustomization.kind) {
      console.error(`${file} ${name}: ${obj.apiVersion}/${obj.kind} is not a Flux Kustomization`);
      failed++;
      continue;
    }
    try {
      new Kustomization(obj).validate();
      console.log(`ok ${file} ${name}`);
    } catch (e) {
      console.error(`${file} ${name}: ${e.message}`);
      failed++;
    }
  }
}
process.exit(failed > 0 ? 1 : 0);
