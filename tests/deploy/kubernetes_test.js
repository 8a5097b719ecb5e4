#!/usr/bin/env node
// deploy/kubernetes/: every manifest is valid against the published schemas,
// offline. Kubernetes' own types (the OpenAPI schemas of kubernetes-models)
// and KEDA's ScaledObject (its CRD's schema, @kubernetes-models/keda) check
// types, required fields and enumerations; on top of them this test refuses
// fields the schemas do not know, which an API server would drop or refuse
// (a misspelt `replicaz` is the mistake that deploys and does nothing). Then
// what no schema sees: the autoscalers point at the Deployment, the volume at
// the ConfigMap, the probes at a declared port; the PromQL of KEDA and of the
// adapter parses (promtool) and uses only families loopscale exports; and the
// pool configuration in the ConfigMap starts http_server.
//
// The checks are shown to catch mistakes: each deliberately broken copy at
// the end must be refused, with the reason expected.
//
// usage: kubernetes_test.js SOURCE_DIR HTTP_SERVER
// The schemas come from tests/deploy/kubernetes/node_modules (scripts/setup
// runs npm ci there).

"use strict";
const fs = require("fs");
const os = require("os");
const path = require("path");
const {execFileSync, spawn} = require("child_process");

const [sourceDir, httpServer] = process.argv.slice(2);
const modules = path.join(__dirname, "kubernetes", "node_modules");
if (!fs.existsSync(modules)) {
  console.error(`FAIL: ${modules} is missing: run scripts/setup (npm ci in tests/deploy/kubernetes)`);
  process.exit(1);
}
const req = (m) => require(path.join(modules, m));
const YAML = req("yaml");
const MODELS = {
  "v1/ConfigMap": req("kubernetes-models/v1/ConfigMap").ConfigMap,
  "v1/Service": req("kubernetes-models/v1/Service").Service,
  "apps/v1/Deployment": req("kubernetes-models/apps/v1/Deployment").Deployment,
  "autoscaling/v2/HorizontalPodAutoscaler":
      req("kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler").HorizontalPodAutoscaler,
  "keda.sh/v1alpha1/ScaledObject":
      req("@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject").ScaledObject,
};
const MANIFESTS = ["deployment.yaml", "keda-scaledobject.yaml", "hpa.yaml", "prometheus-adapter.yaml"];
const dir = path.join(sourceDir, "deploy", "kubernetes");
// Every family a query may use: loopscale's (docs/operations.md) and no other.
const KNOWN = new Set(
    [...fs.readFileSync(path.join(sourceDir, "docs", "operations.md"), "utf8")
         .matchAll(/`(loopscale_[a-z_]+)`/g)].map((m) => m[1]));

let failures = 0;
function check(cond, what) {
  console.log((cond ? "ok   " : "FAIL ") + what);
  if (!cond) failures++;
}

// ---- the schemas -------------------------------------------------------------

function schemaErrors(Model, doc) {
  try {
    new Model(doc).validate();
    return [];
  } catch (e) {
    if (!Array.isArray(e.errors)) throw e;
    return e.errors;
  }
}

// A value no typed schema accepts: ajv's type checks refuse a function.
const PROBE = () => {};

// Fields the schema does not know. The published schemas leave objects open
// (no additionalProperties: false), so a field is probed: replaced by a value
// of no JSON type, a field the schema knows is then an error at its path, and
// one it does not know is not. Maps (labels, data) are typed by their values
// and pass the same way.
function unknownFields(Model, doc) {
  const found = [];
  function walk(node, at) {
    if (Array.isArray(node)) {
      node.forEach((item, i) => walk(item, `${at}/${i}`));
      return;
    }
    if (node === null || typeof node !== "object") return;
    for (const key of Object.keys(node)) {
      const keep = node[key];
      node[key] = PROBE;
      // A JSON Pointer, as ajv reports paths (RFC 6901).
      const where = `${at}/${key.replaceAll("~", "~0").replaceAll("/", "~1")}`;
      const known = schemaErrors(Model, doc).some(
          (e) => e.instancePath === where || e.instancePath.startsWith(where + "/"));
      node[key] = keep;
      if (known) walk(keep, where); else found.push(where || "/");
    }
  }
  walk(doc, "");
  return found;
}

// ---- what no schema sees -------------------------------------------------------

function promqlErrors(queries, work) {
  const errors = [];
  for (const {what, expr} of queries) {
    for (const name of expr.match(/\bloopscale_[a-z_]+/g) || []) {
      if (!KNOWN.has(name)) errors.push(`${what}: ${name} is not a family loopscale exports`);
    }
  }
  const rules = {groups: [{name: "manifests", rules: queries.map(({expr}, i) => (
      {record: `manifest:query:${i}`, expr}))}]};
  const file = path.join(work, "queries.yml");
  fs.writeFileSync(file, YAML.stringify(rules));
  try {
    execFileSync("promtool", ["check", "rules", file], {stdio: "pipe"});
  } catch (e) {
    errors.push(`promtool refuses a query: ${String(e.stdout) + String(e.stderr)}`.trim());
  }
  return errors;
}

// prometheus-adapter's template variables, replaced by values of their kind.
function adapterQuery(q) {
  return q.replaceAll("<<.Series>>", "loopscale_loop_busy_seconds_total")
      .replaceAll("<<.LabelMatchers>>", 'namespace="default",pod=~"loopscale-http-.*"')
      .replaceAll("<<.GroupBy>>", "pod");
}

function problems(docs, work) {
  const errors = [];
  const byKind = {};
  for (const {file, doc} of docs) {
    const key = `${doc.apiVersion}/${doc.kind}`;
    const Model = MODELS[key];
    const name = `${file}: ${doc.kind} ${doc.metadata && doc.metadata.name}`;
    if (!Model) {
      errors.push(`${name}: no schema for ${key}`);
      continue;
    }
    for (const e of schemaErrors(Model, doc)) errors.push(`${name}: ${e.instancePath} ${e.message}`);
    for (const f of unknownFields(Model, doc)) errors.push(`${name}: ${f} is not a field of ${key}`);
    (byKind[doc.kind] = byKind[doc.kind] || []).push(doc);
  }
  const one = (kind, pred = () => true) => (byKind[kind] || []).find(pred);
  const deployment = one("Deployment");
  if (!deployment) return errors.concat("no Deployment");
  const name = deployment.metadata.name;
  const pod = deployment.spec.template.spec;

  const hpa = one("HorizontalPodAutoscaler");
  if (!hpa || hpa.spec.scaleTargetRef.kind !== "Deployment" || hpa.spec.scaleTargetRef.name !== name) {
    errors.push(`the HorizontalPodAutoscaler does not scale Deployment ${name}`);
  }
  const so = one("ScaledObject");
  if (!so || so.spec.scaleTargetRef.name !== name) errors.push(`the ScaledObject does not scale Deployment ${name}`);
  const labels = deployment.spec.template.metadata.labels || {};
  for (const [k, v] of Object.entries(deployment.spec.selector.matchLabels || {})) {
    if (labels[k] !== v) errors.push(`the Deployment's selector ${k}=${v} does not match its pods`);
  }
  const service = one("Service");
  for (const [k, v] of Object.entries((service && service.spec.selector) || {})) {
    if (labels[k] !== v) errors.push(`the Service's selector ${k}=${v} does not match the pods`);
  }
  const ports = new Set(pod.containers.flatMap((c) => (c.ports || []).map((p) => p.name)));
  for (const c of pod.containers) {
    for (const probe of [c.readinessProbe, c.livenessProbe]) {
      if (probe && probe.httpGet && !ports.has(probe.httpGet.port)) {
        errors.push(`${c.name}: a probe names port ${probe.httpGet.port}, which no container declares`);
      }
    }
  }
  for (const v of pod.volumes || []) {
    if (v.configMap && !one("ConfigMap", (m) => m.metadata.name === v.configMap.name)) {
      errors.push(`volume ${v.name}: no ConfigMap ${v.configMap.name}`);
    }
  }

  const queries = [];
  for (const t of (so && so.spec.triggers) || []) {
    if (t.type === "prometheus") queries.push({what: "the ScaledObject's query", expr: t.metadata.query});
  }
  const adapter = one("ConfigMap", (m) => m.data && m.data["config.yaml"]);
  if (!adapter) {
    errors.push("no prometheus-adapter configuration");
  } else {
    const config = YAML.parse(adapter.data["config.yaml"]);
    const metric = hpa && hpa.spec.metrics[0].pods && hpa.spec.metrics[0].pods.metric.name;
    const rule = (config.rules || []).find((r) => r.name && r.name.as === metric);
    if (!rule) {
      errors.push(`no prometheus-adapter rule serves the HPA's metric ${metric}`);
    } else {
      for (const k of Object.keys(rule)) {
        if (!["seriesQuery", "resources", "name", "metricsQuery"].includes(k)) {
          errors.push(`prometheus-adapter rule: ${k} is not a field of a rule`);
        }
      }
      queries.push({what: "the adapter's metricsQuery", expr: adapterQuery(rule.metricsQuery)});
    }
  }
  if (queries.length < 2) errors.push("expected a KEDA query and an adapter query");
  return errors.concat(promqlErrors(queries, work));
}

// The pool configuration in the ConfigMap, given to the server it configures.
function startsHttpServer(toml, work) {
  const file = path.join(work, "pool.toml");
  // The pod's default shared-memory path is shared with other tests here.
  fs.writeFileSync(file, toml.replace("[metrics]", `[metrics]\nshm_path = "/dev/shm/loopscale-k8s-${process.pid}"`));
  return new Promise((resolve) => {
    const proc = spawn(httpServer, ["--port=0", `--config=${file}`], {stdio: ["ignore", "pipe", "pipe"]});
    let out = "", err = "";
    const timer = setTimeout(() => proc.kill("SIGKILL"), 60000);
    proc.stdout.on("data", (d) => {
      out += d;
      if (out.includes("listening on")) proc.kill("SIGTERM");
    });
    proc.stderr.on("data", (d) => { err += d; });
    proc.on("exit", () => {
      clearTimeout(timer);
      fs.rmSync(`/dev/shm/loopscale-k8s-${process.pid}`, {force: true});
      resolve({ok: out.includes("listening on"), out: (out + err).trim()});
    });
  });
}

// ---- the manifests, then copies broken on purpose -------------------------------

function load() {
  const docs = [];
  for (const file of MANIFESTS) {
    for (const d of YAML.parseAllDocuments(fs.readFileSync(path.join(dir, file), "utf8"))) {
      if (d.errors.length) throw new Error(`${file}: ${d.errors[0].message}`);
      docs.push({file, doc: d.toJS()});
    }
  }
  return docs;
}

async function main() {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "loopscale-k8s-"));
  try {
    const docs = load();
    check(docs.length === 6, `${docs.length} documents in ${MANIFESTS.length} files (6 expected)`);
    const found = problems(docs, work);
    for (const p of found) console.log("     " + p);
    check(found.length === 0, "the manifests are valid, consistent, and their queries parse");

    const pool = docs.find(({doc}) => doc.kind === "ConfigMap" && doc.data["pool.toml"]);
    const started = await startsHttpServer(pool.doc.data["pool.toml"], work);
    check(started.ok, `http_server starts with the ConfigMap's pool.toml: ${started.out.split("\n")[0]}`);

    const find = (ds, kind) => ds.find(({doc}) => doc.kind === kind).doc;
    const broken = [
      ["replicas as a string", "spec/replicas must be integer",
       (ds) => { find(ds, "Deployment").spec.replicas = "2"; }],
      ["a misspelt field", "/spec/replicaz is not a field of apps/v1/Deployment",
       (ds) => { find(ds, "Deployment").spec.replicaz = 2; }],
      ["a misspelt field deep in the pod", "readinesProbe is not a field",
       (ds) => {
         const c = find(ds, "Deployment").spec.template.spec.containers[0];
         c.readinesProbe = c.readinessProbe;
       }],
      ["a CPU limit that is no quantity", "must match format",
       (ds) => { find(ds, "Deployment").spec.template.spec.containers[0].resources.limits.cpu = "two"; }],
      ["an HPA without maxReplicas", "must have required property",
       (ds) => { delete find(ds, "HorizontalPodAutoscaler").spec.maxReplicas; }],
      ["an HPA target that is no quantity", "averageValue must match format",
       (ds) => { find(ds, "HorizontalPodAutoscaler").spec.metrics[0].pods.target.averageValue = "65%"; }],
      ["a ScaledObject without triggers", "must have required property triggers",
       (ds) => { delete find(ds, "ScaledObject").spec.triggers; }],
      ["a ScaledObject field KEDA does not have", "minReplicas is not a field",
       (ds) => { find(ds, "ScaledObject").spec.minReplicas = 2; }],
      ["a ScaledObject scaling another Deployment", "ScaledObject does not scale",
       (ds) => { find(ds, "ScaledObject").spec.scaleTargetRef.name = "loopscale"; }],
      ["a probe on an undeclared port", "which no container declares",
       (ds) => { find(ds, "Deployment").spec.template.spec.containers[0].readinessProbe.httpGet.port = "web"; }],
      ["a KEDA query that does not parse", "promtool refuses a query",
       (ds) => { find(ds, "ScaledObject").spec.triggers[0].metadata.query += " /"; }],
      ["a KEDA query on a family loopscale does not export", "loopscale_loop_busy_seconds is not a family",
       (ds) => {
         const m = find(ds, "ScaledObject").spec.triggers[0].metadata;
         m.query = m.query.replace("busy_seconds_total", "busy_seconds");
       }],
      ["an adapter rule serving another metric", "no prometheus-adapter rule serves",
       (ds) => { find(ds, "HorizontalPodAutoscaler").spec.metrics[0].pods.metric.name = "loopscale_capacity"; }],
    ];
    for (const [what, expected, mutate] of broken) {
      const copy = structuredClone(docs);
      mutate(copy);
      const got = problems(copy, work);
      check(got.some((p) => p.includes(expected)),
            `a broken copy is refused: ${what} (${got[0] || "no problem found"})`);
    }
  } finally {
    fs.rmSync(work, {recursive: true, force: true});
  }
  console.log(failures ? `${failures} check(s) failed` : "all checks passed");
  process.exit(failures ? 1 : 0);
}

main().catch((e) => {
  console.error(`FAIL: ${e.stack || e}`);
  process.exit(1);
});
