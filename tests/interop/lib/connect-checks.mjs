// Checks with @connectrpc/connect's client over a connect-web transport
// (gRPC-Web or Connect). Uses only fetch: runs in Node 20 and, bundled, in a
// browser. Every call carries a deadline (timeoutMs), so nothing waits for
// ever.

import { Code, ConnectError, createClient } from '@connectrpc/connect';
import { SHELF1_TITLES } from './registry.mjs';

const TIMEOUT_MS = 10000;
/** StreamBooks' pause between books (5 pauses for 6 books)... */
const PAUSE_MS = 100;
/** ...so the first book comes at least this long before the end. */
const MIN_SPREAD_MS = 300;

/** A check's own failure: reported by its message, without a stack. */
class CheckFailed extends Error {}

function assert(cond, message) {
  if (!cond) throw new CheckFailed(message);
}

const show = (v) => JSON.stringify(v, (_, x) => (typeof x === 'bigint' ? `${x}n` : x));

/** Runs `fn` as a check named `name`; resolves to {name, error?}. */
async function check(results, name, fn) {
  try {
    const note = await fn();
    results.push({ name: note ? `${name} (${note})` : name });
  } catch (e) {
    results.push({ name, error: e instanceof ConnectError ? `ConnectError [${Code[e.code]}] ${e.rawMessage}` : e instanceof CheckFailed ? e.message : String(e?.stack ?? e) });
  }
}

/** Expects `promise` to fail with a ConnectError of `code`; returns it. */
async function failsWith(promise, code) {
  try {
    const got = await promise;
    throw new Error(`expected ${Code[code]}, the call succeeded: ${show(got)}`);
  } catch (e) {
    if (!(e instanceof ConnectError)) throw e;
    assert(e.code === code, `expected ${Code[code]}, got ${Code[e.code]}: ${e.rawMessage}`);
    return e;
  }
}

/** `err.details` names `type`, and findDetails decodes it. */
function detailsOf(err, desc) {
  const types = err.details.map((d) => ('type' in d ? d.type : d.desc?.typeName));
  assert(types.includes(desc.typeName), `err.details types ${show(types)}, expected ${desc.typeName}`);
  const found = err.findDetails(desc);
  assert(found.length === 1, `findDetails(${desc.typeName}) found ${found.length}`);
  return found[0];
}

/**
 * The checks for one transport. `api` is lib/registry.mjs' loadRegistry().
 * In a browser the gateway's CORS must allow the request headers
 * x-echo-interop and x-fail-after and expose x-echo-interop.
 * Resolves to [{name, error?}].
 */
export async function connectChecks({ transport, api }) {
  const client = createClient(api.service, transport);
  const results = [];
  const opts = { timeoutMs: TIMEOUT_MS };

  await check(results, 'unary GetBook', async () => {
    let echoed;
    const book = await client.getBook({ name: 'shelves/1/books/1' }, {
      ...opts,
      headers: { 'x-echo-interop': 'hello' },
      onHeader: (h) => { echoed = h.get('x-echo-interop'); },
    });
    assert(book.title === 'The Left Hand of Darkness', `title ${show(book.title)}`);
    assert(book.name === 'shelves/1/books/1', `name ${show(book.name)}`);
    assert(show(book.authors) === '["Ursula K. Le Guin"]', `authors ${show(book.authors)}`);
    // Fields whose JSON mapping is special: int64, wrappers, WKTs, bytes, maps.
    assert(book.pageCount === 304n, `pageCount ${show(book.pageCount)}`);
    assert(book.rating === 5, `rating ${show(book.rating)}`);
    assert(book.readTime?.seconds === 34200n && book.readTime.nanos === 500000000, `readTime ${show(book.readTime)}`);
    assert(book.publishTime?.seconds === -26438400n, `publishTime ${show(book.publishTime)}`);
    assert(book.price === 9.99, `price ${show(book.price)}`);
    assert(book.publisher?.name === 'Ace Books', `publisher ${show(book.publisher)}`);
    assert(new TextDecoder().decode(book.coverThumbnail.slice(0, 6)) === 'GIF89a', 'coverThumbnail is not the GIF');
    assert(book.labels && Object.keys(book.labels).length > 0, `labels ${show(book.labels)}`);
    assert(echoed === 'hello', `response header x-echo-interop: ${show(echoed)}`);
    return `"${book.title}", x-echo-interop echoed`;
  });

  await check(results, 'server stream StreamBooks', async () => {
    const titles = [];
    const names = [];
    let first;
    for await (const book of client.streamBooks({ parent: 'shelves/1', repeat: 2, interval: { nanos: PAUSE_MS * 1e6 } }, opts)) {
      first ??= Date.now();
      titles.push(book.title);
      names.push(book.name);
    }
    const gap = Date.now() - first;
    const want = [...SHELF1_TITLES, ...SHELF1_TITLES];
    assert(show(titles) === show(want), `titles ${show(titles)}`);
    assert(names[2] === 'shelves/1/books/3', `names ${show(names)}`);
    // The backend pauses PAUSE_MS between books: a gateway that buffered the
    // stream would hand over the first book only at the end.
    assert(gap >= MIN_SPREAD_MS, `the first book came only ${gap} ms before the end: not streamed`);
    return `${titles.length} books in order, the first ${gap} ms before the end`;
  });

  await check(results, 'unary error NOT_FOUND with ResourceInfo', async () => {
    const err = await failsWith(client.getBook({ name: 'shelves/1/books/999' }, opts), Code.NotFound);
    const info = detailsOf(err, api.ResourceInfo);
    assert(info.resourceName === 'shelves/1/books/999', `resourceName ${show(info.resourceName)}`);
    assert(info.resourceType === 'library.v1.Book', `resourceType ${show(info.resourceType)}`);
    assert(err.rawMessage.includes('not found'), `message ${show(err.rawMessage)}`);
    return `"${err.rawMessage}"`;
  });

  await check(results, 'unary error INVALID_ARGUMENT with BadRequest', async () => {
    const err = await failsWith(client.getBook({ name: 'not-a-book' }, opts), Code.InvalidArgument);
    const bad = detailsOf(err, api.BadRequest);
    assert(bad.fieldViolations[0]?.field === 'name', `violations ${show(bad.fieldViolations)}`);
    return 'field "name"';
  });

  await check(results, 'server stream error NOT_FOUND with ResourceInfo', async () => {
    const got = [];
    const err = await failsWith((async () => {
      for await (const book of client.streamBooks({ parent: 'shelves/999' }, opts)) got.push(book.title);
    })(), Code.NotFound);
    assert(got.length === 0, `received ${show(got)} before the error`);
    const info = detailsOf(err, api.ResourceInfo);
    assert(info.resourceName === 'shelves/999', `resourceName ${show(info.resourceName)}`);
    return `"${err.rawMessage}"`;
  });

  await check(results, 'server stream failing midway ABORTED', async () => {
    const got = [];
    await failsWith((async () => {
      for await (const book of client.streamBooks({ parent: 'shelves/1' }, { ...opts, headers: { 'x-fail-after': '2' } })) {
        got.push(book.title);
      }
    })(), Code.Aborted);
    assert(show(got) === show(SHELF1_TITLES.slice(0, 2)), `received ${show(got)} before the error`);
    return '2 books, then the status';
  });

  return results;
}

/**
 * Connect GETs (`useHttpGet`) of GetBook, which the example API marks
 * `idempotency_level = NO_SIDE_EFFECTS` (the Connect protocol allows GET
 * only for such methods, and connect-web GETs only them).
 * `transportFor(fetch)` makes the transport with that fetch function, which
 * records what goes out, so each check sees that it really was a GET with
 * the message in the query.
 */
export async function connectGetChecks({ transportFor, api, encoding }) {
  const sent = [];
  const recording = (url, init) => {
    sent.push({ method: init?.method, url: String(url) });
    return globalThis.fetch(url, init);
  };
  const client = createClient(api.service, transportFor(recording));
  const results = [];
  const opts = { timeoutMs: TIMEOUT_MS };
  const wasGet = () => {
    const reqs = sent.splice(0);
    assert(reqs.length === 1 && reqs[0].method === 'GET', `requests ${show(reqs)}, expected one GET`);
    const q = new URL(reqs[0].url).searchParams;
    assert(q.get('encoding') === encoding && q.get('connect') === 'v1' && q.has('message'), `query of ${reqs[0].url}`);
  };

  await check(results, 'unary GetBook as GET', async () => {
    const book = await client.getBook({ name: 'shelves/1/books/1' }, opts);
    wasGet();
    assert(book.title === 'The Left Hand of Darkness', `title ${show(book.title)}`);
    assert(book.pageCount === 304n, `pageCount ${show(book.pageCount)}`);
    return `"${book.title}"`;
  });

  await check(results, 'unary error NOT_FOUND with ResourceInfo as GET', async () => {
    const err = await failsWith(client.getBook({ name: 'shelves/1/books/999' }, opts), Code.NotFound);
    wasGet();
    const info = detailsOf(err, api.ResourceInfo);
    assert(info.resourceName === 'shelves/1/books/999', `resourceName ${show(info.resourceName)}`);
    return `"${err.rawMessage}"`;
  });

  return results;
}
