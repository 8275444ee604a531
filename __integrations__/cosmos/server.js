// A Cosmos DB (SQL API) server for the dispatcher's tests, on plain HTTP at 127.0.0.1: the npm package
// @vercel/cosmosdb-server (in memory, any key), with the five fixes the Rust SDK (azure_data_cosmos 1) needs,
// as docs/cosmos-local.md lists them. The fixes wrap the server's own request handler;
// nothing in node_modules is edited.
//
//   node server.js [port]    prints "listening <port>" once it accepts connections (port 0: any free one)
//
// With COSMOS_REQUEST_LOG=<file>, one line per request is appended to the file: `<method> <path>`, so that a
// test can count the requests a piece of work costs. With COSMOS_ENTRA_TOKEN=<token>, only that Microsoft Entra
// token is accepted (see entraAuthorised). With COSMOS_LATENCY_MS=<ms>, every request is answered that
// much later, as over a network (a measurement's knob; the tests do not set it).
//
// `POST /__throttle?ms=<ms>&retryAfterMs=<ms>` makes every item request of the next <ms> answer 429 with
// `x-ms-retry-after-ms`, as Cosmos DB does when the request units run out; `GET /__throttle` tells how many
// requests were throttled so far, as `{"throttled": n}`.
"use strict";
const fs = require("fs");
const { createHttpServer } = require("@vercel/cosmosdb-server");
const requestLog = process.env.COSMOS_REQUEST_LOG;
const latencyMs = Number(process.env.COSMOS_LATENCY_MS || 0);
const entraToken = process.env.COSMOS_ENTRA_TOKEN;

// With COSMOS_ENTRA_TOKEN=<token>, every request must carry it as Cosmos DB's data-plane RBAC asks
// (`authorization: type=aad&ver=1.0&sig=<token>`, URL-encoded), as a managed identity sends it; keys are refused.
function entraAuthorised(req) {
  const header = decodeURIComponent(String(req.headers["authorization"] || ""));
  return header === `type=aad&ver=1.0&sig=${entraToken}`;
}

// The crash that fix 3 turns into a 404 is also logged by the server with a stack trace: keep it quiet.
const logError = console.error;
console.error = (error, ...rest) => {
  if (error instanceof TypeError && /read-document\.js/.test(String(error.stack))) return;
  logError(error, ...rest);
};

const server = createHttpServer();
const [handle] = server.listeners("request");
server.removeAllListeners("request");

// "dbs/{db}/colls/{coll}" -> its partition key path ("/webhookId"), learnt from the collection documents the
// server sends (the SDK reads a container before it queries it).
const partitionKeyPaths = new Map();

const throttle = { until: 0, retryAfterMs: 100, count: 0 };

// The test's control of throttling; true when the request was one (and is answered).
function throttleControl(req, res) {
  const [path, search] = req.url.split("?");
  if (path !== "/__throttle") return false;
  if (req.method === "POST") {
    const params = new URLSearchParams(search || "");
    throttle.until = Date.now() + Number(params.get("ms") || 0);
    throttle.retryAfterMs = Number(params.get("retryAfterMs") || 100);
  }
  res.writeHead(200, { "content-type": "application/json" });
  res.end(JSON.stringify({ throttled: throttle.count }));
  return true;
}

// While throttled, requests for items (reads, writes, queries) answer 429 with the time to wait; the account and
// container metadata still answer, as the service's metadata requests are not charged to the containers.
function throttled(req, res, path) {
  if (Date.now() >= throttle.until || !/\/docs(\/|$)/.test(path)) return false;
  throttle.count += 1;
  res.writeHead(429, { "content-type": "application/json", "x-ms-retry-after-ms": String(throttle.retryAfterMs),
    "x-ms-substatus": "3200" });
  res.end(JSON.stringify({ code: "429", message: "Request rate is large. More Request Units may be needed." }));
  return true;
}

server.on("request", (req, res) => {
  if (throttleControl(req, res)) return;
  const path = req.url.split("?")[0].replace(/^\/+|\/+$/g, "");
  if (requestLog) fs.appendFileSync(requestLog, `${req.method} /${path}\n`);
  if (entraToken && !entraAuthorised(req)) {
    res.writeHead(401, { "content-type": "application/json" });
    return res.end(JSON.stringify({ code: "Unauthorized", message: "Request blocked by Auth: not the Entra token issued" }));
  }
  if (throttled(req, res, path)) return;
  const query = req.method === "POST" && /^dbs\/[^/]+\/colls\/[^/]+\/docs$/.test(path) &&
    String(req.headers["x-ms-documentdb-isquery"]).toLowerCase() === "true";
  // Fix 2: the SDK names a partition key range and never sends the cross-partition flag; without the flag the
  // server refuses every WHERE clause that is not on the partition key.
  if (query) req.headers["x-ms-documentdb-query-enablecrosspartition"] = "true";
  const end = res.end.bind(res);
  res.end = (chunk, ...rest) => {
    const text = chunk === undefined ? "" : chunk.toString();
    const location = res.getHeader("content-location");
    if (location) res.setHeader("content-location", String(location).replace(/^https:/, "http:"));
    return end(fix(req, res, path, text, query), ...rest);
  };
  if (latencyMs > 0) setTimeout(() => handle(req, res), latencyMs);
  else handle(req, res);
});

function fix(req, res, path, text, query) {
  // Fix 4: with plain HTTP the account document still advertises https:// endpoints.
  if (req.method === "GET" && path === "") return text.replace(/https:\/\//g, "http://");
  // Fix 3: reading a missing document crashes the server's handler (500); Cosmos answers 404.
  if (req.method === "GET" && /^dbs\/[^/]+\/colls\/[^/]+\/docs\/[^/]+$/.test(path) && res.statusCode === 500) {
    res.statusCode = 404;
    return JSON.stringify({ code: "NotFound", message: "Entity with the specified id does not exist in the system." });
  }
  let body;
  try {
    body = JSON.parse(text);
  } catch (_) {
    return text;
  }
  learnPartitionKeyPaths(req, path, body);
  // Fix 1: partition key range ids come back as numbers; the SDK requires strings.
  if (/^dbs\/[^/]+\/colls\/[^/]+\/pkranges$/.test(path) && Array.isArray(body.PartitionKeyRanges)) {
    body.PartitionKeyRanges = body.PartitionKeyRanges.map((range) => ({ ...range, id: String(range.id) }));
    return JSON.stringify(body);
  }
  // Fix 5: single-partition queries ignore the partition key header; keep only that partition's documents.
  const partitionKey = req.headers["x-ms-documentdb-partitionkey"];
  const keyPath = partitionKeyPaths.get(path.replace(/\/docs$/, ""));
  if (query && partitionKey && keyPath && Array.isArray(body.Documents)) {
    const [value] = JSON.parse(partitionKey);
    const keys = keyPath.split("/").filter(Boolean);
    const inPartition = (doc) => {
      if (doc === null || typeof doc !== "object") return true; // a projection: nothing to tell it by
      const found = keys.reduce((node, key) => (node === undefined || node === null ? undefined : node[key]), doc);
      return found === undefined || found === value;
    };
    body.Documents = body.Documents.filter(inPartition);
    body._count = body.Documents.length;
    res.setHeader("x-ms-item-count", String(body.Documents.length));
    return JSON.stringify(body);
  }
  return text;
}

function learnPartitionKeyPaths(req, path, body) {
  const remember = (link, collection) => {
    const paths = collection && collection.partitionKey && collection.partitionKey.paths;
    if (Array.isArray(paths) && paths.length) partitionKeyPaths.set(link, paths[0]);
  };
  if (/^dbs\/[^/]+\/colls\/[^/]+$/.test(path)) remember(path, body);
  if (/^dbs\/[^/]+\/colls$/.test(path)) {
    if (req.method === "POST") remember(`${path}/${body.id}`, body);
    for (const collection of body.DocumentCollections || []) remember(`${path}/${collection.id}`, collection);
  }
}

server.listen(Number(process.argv[2] || 0), "127.0.0.1", () => {
  console.log(`listening ${server.address().port}`);
});
