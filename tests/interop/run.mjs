// Real third-party clients against the real gateway.
//
// Starts the example backend and the gateway (as `cargo test` built them),
// serves test pages from two other origins, and opens them in headless
// Chromium (Debian's /usr/bin/chromium, driven by playwright-core):
//
// - a browser's real EventSource receives a server stream cross-origin from
//   an allowed origin: three books in order, with their ids, then the `end`
//   event;
// - the same page from an origin CORS does not allow is refused by the
//   browser.
//
// Exits non-zero on any failure. Run: `npm ci && node run.mjs` in this
// directory (after `cargo test`, or `cargo build --bin protogate --example
// library_server`).

import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const root = fileURLToPath(new URL('../..', import.meta.url));
const target = process.env.CARGO_TARGET_DIR ?? join(root, 'target');
const chromiumPath = process.env.CHROMIUM ?? '/usr/bin/chromium';
const children = [];

function fail(message) {
  console.error(`interop: FAILED: ${message}`);
  process.exitCode = 1;
}

/** Starts a process and waits (15 s at most) for `ready` in its output. */
function start(cmd, args, ready) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, RUST_LOG: 'info' } });
    children.push(child);
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`${cmd} did not start: ${seen.slice(-500)}`)), 15000);
    const look = (chunk) => {
      seen += chunk;
      const m = seen.match(ready);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    child.stdout.on('data', look);
    child.stderr.on('data', look);
    child.on('exit', (code) => reject(new Error(`${cmd} exited (${code}): ${seen.slice(-500)}`)));
  });
}

/** Serves the test page on an ephemeral port; resolves to its origin. */
function pageServer() {
  const page = `<!doctype html><meta charset="utf-8"><title>protogate interop</title>
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
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(page);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    children.push({ kill: () => server.close() });
    resolve(`http://127.0.0.1:${server.address().port}`);
  }));
}

async function main() {
  const allowed = await pageServer();
  const other = await pageServer();
  const backend = await start(join(target, 'debug/examples/library_server'), ['--listen', '127.0.0.1:0'],
    /listening on (\S+)/);
  const dir = mkdtempSync(join(tmpdir(), 'protogate-interop-'));
  const routes = join(dir, 'routes.yaml');
  writeFileSync(routes, `cors:\n  allow_origins: ['${allowed}']\n`);
  const gateway = await start(join(target, 'debug/protogate'),
    ['serve', '--listen', '127.0.0.1:0', '--watch', 'false', '--routes', routes,
      '--upstream', `http://${backend}`, '--descriptors', join(root, 'descriptors')],
    /listening on http:\/\/(\S+?)["\s]/);
  const stream = `http://${gateway}/v1/shelves/1/books:stream?alt=sse`;

  const browser = await chromium.launch({
    executablePath: chromiumPath,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  try {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${allowed}/?stream=${encodeURIComponent(stream)}`);
    const ok = await page.evaluate(() => window.result);
    const titles = ok.got.map((m) => m.book.title);
    const ids = ok.got.map((m) => m.id);
    if (ok.outcome !== 'end') fail(`allowed origin: ended with ${JSON.stringify(ok)}`);
    else if (JSON.stringify(titles) !== JSON.stringify(['The Left Hand of Darkness', 'Beloved', 'Good Omens'])) {
      fail(`allowed origin: got ${JSON.stringify(titles)}`);
    } else if (JSON.stringify(ids) !== '["1","2","3"]') fail(`allowed origin: ids ${JSON.stringify(ids)}`);
    else console.log(`interop: EventSource from ${allowed} received ${titles.length} books and the end event`);

    const blockedPage = await context.newPage();
    await blockedPage.goto(`${other}/?stream=${encodeURIComponent(stream)}`);
    const blocked = await blockedPage.evaluate(() => window.result);
    if (blocked.outcome !== 'blocked' || blocked.got.length !== 0) {
      fail(`origin ${other} is not allowed by CORS, yet: ${JSON.stringify(blocked)}`);
    } else {
      console.log(`interop: EventSource from ${other} was refused by the browser (CORS)`);
    }
  } finally {
    await browser.close();
  }
}

try {
  await main();
} catch (e) {
  fail(e.stack ?? String(e));
} finally {
  for (const c of children) c.kill();
}
