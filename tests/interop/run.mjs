// Real third-party clients against the real gateway.
//
// Starts the example backend and the gateway (as `cargo test` built them),
// then:
//
// 1. In Node 20, with the descriptor set loaded at run time (no codegen):
//    - @connectrpc/connect-web's gRPC-Web transport (application/grpc-web+proto),
//    - its Connect transport, JSON (application/json, connect+json) and
//      binary (application/proto, connect+proto), and with `useHttpGet`
//      (GETs of GetBook, which the example API marks NO_SIDE_EFFECTS),
//    - Google's grpc-web runtime in text mode (application/grpc-web-text)
//      over an XMLHttpRequest polyfill (xhr2), with hand-built
//      MethodDescriptors;
//    each: a unary call, a server stream, errors with google.rpc details, a
//    stream failing midway, and metadata echoed back (lib/*.mjs).
// 2. In headless Chromium (Debian's /usr/bin/chromium, driven by
//    playwright-core), from pages served on other origins than the gateway,
//    so that CORS is exercised for real:
//    - a browser's EventSource receives a server stream from an allowed
//      origin (three books in order, with their ids, then the `end` event),
//      and is refused from an origin CORS does not allow;
//    - the same suites as in Node, bundled with esbuild at test time
//      (pages/rpc.mjs), from the allowed origin; and from the other origin,
//      gRPC-Web and Connect calls are refused by the browser.
//
// Prints one line per check and a closing `N passed, N failed` line; exits
// non-zero on any failure. Everything is bounded in time and on loopback.
// Run: `npm ci && node run.mjs [FILTER]` in this directory (after `cargo
// test`, or `cargo build --bin protogate --example library_server`); FILTER
// keeps only the suites whose label contains it (e.g. `grpc-web text`).

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import { chromium } from 'playwright-core';
import XMLHttpRequest from 'xhr2';
import { loadRegistry } from './lib/registry.mjs';
import { suites } from './lib/suites.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));
const root = fileURLToPath(new URL('../..', import.meta.url));
const target = process.env.CARGO_TARGET_DIR ?? join(root, 'target');
const chromiumPath = process.env.CHROMIUM ?? '/usr/bin/chromium';
const only = process.argv[2];
const children = [];
const tally = { passed: 0, failed: 0 };

/** The whole run's bound: a hang anywhere fails the run instead of CI's. */
const WATCHDOG_MS = 240_000;
/** One browser evaluation (a page's whole suite list). */
const PAGE_MS = 90_000;

function fail(message) {
  console.error(`interop: FAILED: ${message}`);
  tally.failed += 1;
  process.exitCode = 1;
}

function pass(message) {
  console.log(`interop: ok: ${message}`);
  tally.passed += 1;
}

function report(where, label, results) {
  const prefix = label ? `${where} ${label}` : where;
  if (results.length === 0) fail(`${prefix}: no check ran`);
  for (const r of results) {
    if (r.error) fail(`${prefix}: ${r.name}: ${r.error}`);
    else pass(`${prefix}: ${r.name}`);
  }
}

function within(ms, what, promise) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

let stopping = false;

/**
 * Starts a process and waits (15 s at most) for `ready` in its output. One
 * that exits before the run is over fails the run, with its last output.
 */
function start(cmd, args, ready) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, RUST_LOG: 'info' } });
    children.push({ kill: () => { stopping = true; child.kill(); } });
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`${cmd} did not start: ${seen.slice(-500)}`)), 15000);
    const look = (chunk) => {
      seen += chunk;
      if (seen.length > 100_000) seen = seen.slice(-50_000);
      const m = seen.match(ready);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    child.stdout.on('data', look);
    child.stderr.on('data', look);
    child.on('error', (e) => reject(new Error(`${cmd}: ${e.message}`)));
    child.on('exit', (code, signal) => {
      const why = `${cmd} exited (${signal ?? code}): ${seen.slice(-2000)}`;
      if (!stopping) fail(`during the run, ${why}`);
      reject(new Error(why));
    });
  });
}

/** The EventSource page (any path but the ones below). */
const eventSourcePage = `<!doctype html><meta charset="utf-8"><title>protogate interop</title>
<script>
  const q = new URLSearchParams(location.search);
  window.result = new Promise((resolve) => {
    const got = [];
    const es = new EventSource(q.get('stream'));
    es.onmessage = (e) => got.push({ id: e.lastEventId, book: JSON.parse(e.data) });
    es.addEventListener('end', () => { es.close(); resolve({ outcome: 'end', got }); });
    es.addEventListener('error', (e) => {
      es.close();
      resolve(e.data ? { outcome: 'status', status: JSON.parse(e.data), got } : { outcome: 'blocked', got });
    });
  });
</script>`;

/** The RPC page: pages/rpc.mjs as bundled by esbuild. */
const rpcPage = `<!doctype html><meta charset="utf-8"><title>protogate interop: loading</title>
<script type="module" src="/rpc.js"></script>`;

/** Serves the test pages on an ephemeral port; resolves to its origin. */
function pageServer(files) {
  const server = http.createServer((req, res) => {
    const path = new URL(req.url, 'http://x').pathname;
    const file = files[path];
    if (file) {
      res.writeHead(200, { 'content-type': file.type, 'cache-control': 'no-store' });
      res.end(file.body);
    } else {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(eventSourcePage);
    }
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    children.push({ kill: () => server.close() });
    resolve(`http://127.0.0.1:${server.address().port}`);
  }));
}

/** Bundles pages/rpc.mjs for the browser into `dir`; resolves to the code. */
async function bundle(dir) {
  const outfile = join(dir, 'rpc.js');
  await esbuild.build({
    entryPoints: [join(here, 'pages/rpc.mjs')],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'chrome110',
    outfile,
    logLevel: 'warning',
  });
  return readFileSync(outfile);
}

async function nodeSuites(ctx) {
  globalThis.XMLHttpRequest = XMLHttpRequest;
  for (const s of suites.filter((s) => !only || s.label.includes(only))) {
    try {
      report('node', s.label, await within(PAGE_MS, s.label, s.run({ ...ctx, browser: false })));
    } catch (e) {
      fail(`node ${s.label}: ${e.stack ?? e}`);
    }
  }
}

async function eventSource(context, allowed, other, gateway) {
  const stream = `${gateway}/v1/shelves/1/books:stream?alt=sse`;
  const page = await context.newPage();
  await page.goto(`${allowed}/?stream=${encodeURIComponent(stream)}`);
  const ok = await within(30_000, 'EventSource page', page.evaluate(() => window.result));
  const titles = ok.got.map((m) => m.book.title);
  const ids = ok.got.map((m) => m.id);
  if (ok.outcome !== 'end') fail(`browser EventSource from ${allowed}: ended with ${JSON.stringify(ok)}`);
  else if (JSON.stringify(titles) !== JSON.stringify(['The Left Hand of Darkness', 'Beloved', 'Good Omens'])) {
    fail(`browser EventSource from ${allowed}: got ${JSON.stringify(titles)}`);
  } else if (JSON.stringify(ids) !== '["1","2","3"]') fail(`browser EventSource from ${allowed}: ids ${JSON.stringify(ids)}`);
  else pass(`browser EventSource from ${allowed} received ${titles.length} books and the end event`);

  const blockedPage = await context.newPage();
  await blockedPage.goto(`${other}/?stream=${encodeURIComponent(stream)}`);
  const blocked = await within(30_000, 'EventSource page', blockedPage.evaluate(() => window.result));
  if (blocked.outcome !== 'blocked' || blocked.got.length !== 0) {
    fail(`browser EventSource: origin ${other} is not allowed by CORS, yet: ${JSON.stringify(blocked)}`);
  } else {
    pass(`browser EventSource from ${other} was refused by the browser (CORS)`);
  }
}

/** Opens the RPC page on `origin`; its console goes to `log` for failures. */
async function rpcPageOn(context, origin, log) {
  const page = await context.newPage();
  page.on('console', (m) => log.push(`[${origin} console.${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => log.push(`[${origin} page error] ${e.message}`));
  await page.goto(`${origin}/rpc.html`, { timeout: 15_000 });
  await page.waitForFunction(() => window.interop, null, { timeout: 15_000 });
  return page;
}

async function browserSuites(context, allowed, other, gateway) {
  const log = [];
  try {
    const page = await rpcPageOn(context, allowed, log);
    const out = await within(PAGE_MS, `RPC page on ${allowed}`,
      page.evaluate(([g, f]) => window.interop.run(g, f), [gateway, only ?? null]));
    for (const s of out) report(`browser (page on ${allowed})`, s.label, s.results);

    const refusedPage = await rpcPageOn(context, other, log);
    const refused = await within(PAGE_MS, `RPC page on ${other}`,
      refusedPage.evaluate((g) => window.interop.refused(g), gateway));
    report(`browser (page on ${other}, not allowed by CORS)`, '', refused);
  } catch (e) {
    fail(`browser RPC page: ${e.stack ?? e}`);
  }
  if (process.exitCode) for (const line of log) console.error(`interop: ${line}`);
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'protogate-interop-'));
  children.push({ kill: () => rmSync(dir, { recursive: true, force: true }) });
  const descriptorSet = readFileSync(join(root, 'descriptors/library.binpb'));
  const api = loadRegistry(descriptorSet);
  const files = {
    '/rpc.html': { type: 'text/html; charset=utf-8', body: rpcPage },
    '/rpc.js': { type: 'text/javascript; charset=utf-8', body: await bundle(dir) },
    '/library.binpb': { type: 'application/octet-stream', body: descriptorSet },
  };
  const allowed = await pageServer(files);
  const other = await pageServer(files);
  const backend = await start(join(target, 'debug/examples/library_server'), ['--listen', '127.0.0.1:0'],
    /listening on (\S+)/);
  const routes = join(dir, 'routes.yaml');
  writeFileSync(routes, [
    'cors:',
    `  allow_origins: ['${allowed}']`,
    "  allow_headers: ['x-echo-interop', 'x-fail-after']",
    "  expose_headers: ['x-echo-interop']",
    '',
  ].join('\n'));
  const gatewayAddr = await start(join(target, 'debug/protogate'),
    ['serve', '--listen', '127.0.0.1:0', '--watch', 'false', '--routes', routes,
      '--upstream', `http://${backend}`, '--descriptors', join(root, 'descriptors')],
    /listening on http:\/\/(\S+?)["\s]/);
  const base = `http://${gatewayAddr}`;

  await nodeSuites({ base, api });

  const browser = await chromium.launch({
    executablePath: chromiumPath,
    timeout: 30_000,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  try {
    const context = await browser.newContext();
    context.setDefaultTimeout(30_000);
    if (!only) await eventSource(context, allowed, other, base);
    await browserSuites(context, allowed, other, base);
  } finally {
    await browser.close();
  }
}

const watchdog = setTimeout(() => {
  fail(`the run took over ${WATCHDOG_MS / 1000} s`);
  for (const c of children) c.kill();
  process.exit(1);
}, WATCHDOG_MS);
watchdog.unref();

try {
  await main();
} catch (e) {
  fail(e.stack ?? String(e));
} finally {
  for (const c of children) c.kill();
}
console.log(`interop: ${tally.passed} passed, ${tally.failed} failed`);
process.exit(tally.failed > 0 || tally.passed === 0 ? 1 : 0);
