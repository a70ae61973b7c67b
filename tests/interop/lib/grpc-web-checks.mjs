// Checks with Google's `grpc-web` client runtime in TEXT mode
// (application/grpc-web-text: base64 frames, which is what streams through
// XMLHttpRequest). Its protoc plugin is not used: the MethodDescriptors are
// built by hand over @bufbuild/protobuf messages from the runtime registry.
// Needs a global XMLHttpRequest (a browser's, or a polyfill in Node).

import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import * as grpcWeb from 'grpc-web';
import { SHELF1_TITLES } from './registry.mjs';

const TIMEOUT_MS = 10000;
/** StreamBooks' pause between books (5 pauses for 6 books)... */
const PAUSE_MS = 100;
/** ...so the first book comes at least this long before the end. */
const MIN_SPREAD_MS = 300;
const SERVICE = 'library.v1.LibraryService';

/** A check's own failure: reported by its message, without a stack. */
class CheckFailed extends Error {}

function assert(cond, message) {
  if (!cond) throw new CheckFailed(message);
}

const show = (v) => JSON.stringify(v, (_, x) => (typeof x === 'bigint' ? `${x}n` : x));

/** What grpc-web expects of a request: an object with serializeBinary(). */
function requestClass(schema) {
  return class {
    constructor(init) {
      this.message = create(schema, init);
    }

    serializeBinary() {
      return toBinary(schema, this.message);
    }
  };
}

function methods(api) {
  const GetBookRequest = requestClass(api.GetBookRequest);
  const StreamBooksRequest = requestClass(api.StreamBooksRequest);
  const decodeBook = (bytes) => fromBinary(api.Book, bytes);
  return {
    GetBookRequest,
    StreamBooksRequest,
    getBook: new grpcWeb.MethodDescriptor(`/${SERVICE}/GetBook`, 'unary', GetBookRequest, Object,
      (req) => req.serializeBinary(), decodeBook),
    streamBooks: new grpcWeb.MethodDescriptor(`/${SERVICE}/StreamBooks`, 'server_streaming', StreamBooksRequest,
      Object, (req) => req.serializeBinary(), decodeBook),
  };
}

/** grpc-web's `deadline` metadata: becomes grpc-timeout and an XHR timeout. */
const deadline = () => ({ deadline: String(Date.now() + TIMEOUT_MS) });

/** A unary call; resolves to {book} or {err}. */
function unary(client, base, m, name, metadata = {}) {
  return new Promise((resolve) => {
    let headers;
    const call = client.rpcCall(`${base}/${SERVICE}/GetBook`, new m.GetBookRequest({ name }),
      { ...deadline(), ...metadata }, m.getBook, (err, book) => resolve(err ? { err, headers } : { book, headers }));
    call.on('metadata', (h) => { headers = h; });
  });
}

/** A server stream; resolves to {books, status, err?}. */
function stream(client, base, m, init, metadata = {}) {
  return new Promise((resolve) => {
    const books = [];
    let status;
    const timer = setTimeout(() => {
      call.cancel();
      resolve({ books, status, err: new Error(`no end within ${TIMEOUT_MS + 2000} ms`) });
    }, TIMEOUT_MS + 2000);
    const call = client.serverStreaming(`${base}/${SERVICE}/StreamBooks`, new m.StreamBooksRequest(init),
      { ...deadline(), ...metadata }, m.streamBooks);
    let first;
    call.on('data', (b) => { first ??= Date.now(); books.push(b); });
    call.on('status', (s) => { status = s; });
    call.on('error', (err) => { clearTimeout(timer); resolve({ books, status, err }); });
    call.on('end', () => { clearTimeout(timer); resolve({ books, status, first, end: Date.now() }); });
  });
}

/** Decodes grpc-status-details-bin (unpadded or padded base64) as google.rpc.Status. */
function statusDetails(api, metadata) {
  const b64 = metadata?.['grpc-status-details-bin'];
  assert(b64, `no grpc-status-details-bin in the error's metadata: ${show(Object.keys(metadata ?? {}))}`);
  const bin = atob(b64.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(b64.length / 4) * 4, '='));
  const status = fromBinary(api.Status, Uint8Array.from(bin, (c) => c.charCodeAt(0)));
  return status;
}

async function check(results, name, fn) {
  try {
    const note = await fn();
    results.push({ name: note ? `${name} (${note})` : name });
  } catch (e) {
    results.push({ name, error: e instanceof CheckFailed ? e.message : String(e?.stack ?? e) });
  }
}

const describe = (err) => `RpcError code ${err.code}: ${err.message}`;

/**
 * Resolves to [{name, error?}]. `base` is the gateway's URL; `incremental`:
 * whether the XMLHttpRequest hands over a response as it comes (a browser's
 * does), so that streaming itself is checked.
 */
export async function grpcWebTextChecks({ base, api, incremental = true }) {
  const client = new grpcWeb.GrpcWebClientBase({ format: 'text' });
  const m = methods(api);
  const results = [];

  await check(results, 'unary GetBook', async () => {
    const { book, err, headers } = await unary(client, base, m, 'shelves/1/books/1', { 'x-echo-interop': 'hello' });
    assert(!err, err && describe(err));
    assert(book.title === 'The Left Hand of Darkness', `title ${show(book.title)}`);
    assert(book.pageCount === 304n, `pageCount ${show(book.pageCount)}`);
    assert(headers?.['x-echo-interop'] === 'hello', `response headers ${show(headers)}`);
    return `"${book.title}", x-echo-interop echoed`;
  });

  await check(results, 'server stream StreamBooks', async () => {
    const { books, status, err, first, end } = await stream(client, base, m,
      { parent: 'shelves/1', repeat: 2, interval: { nanos: PAUSE_MS * 1e6 } });
    assert(!err, err && describe(err));
    const titles = books.map((b) => b.title);
    assert(show(titles) === show([...SHELF1_TITLES, ...SHELF1_TITLES]), `titles ${show(titles)}`);
    assert(status?.code === grpcWeb.StatusCode.OK, `status ${show(status)}`);
    // The backend pauses PAUSE_MS between books: a gateway that buffered the
    // stream would hand over the first book only at the end.
    const gap = end - first;
    if (incremental) assert(gap >= MIN_SPREAD_MS, `the first book came only ${gap} ms before the end: not streamed`);
    return `${titles.length} books in order, status OK${incremental ? `, the first ${gap} ms before the end` : ''}`;
  });

  await check(results, 'unary error NOT_FOUND with details', async () => {
    const { book, err } = await unary(client, base, m, 'shelves/1/books/999');
    assert(err, `expected NOT_FOUND, got ${show(book)}`);
    assert(err.code === grpcWeb.StatusCode.NOT_FOUND, describe(err));
    const status = statusDetails(api, err.metadata);
    assert(status.code === grpcWeb.StatusCode.NOT_FOUND, `details' code ${status.code}`);
    const types = status.details.map((a) => a.typeUrl);
    assert(show(types) === '["type.googleapis.com/google.rpc.ResourceInfo"]', `details ${show(types)}`);
    const info = fromBinary(api.ResourceInfo, status.details[0].value);
    assert(info.resourceName === 'shelves/1/books/999', `resourceName ${show(info.resourceName)}`);
    return `"${err.message}"`;
  });

  await check(results, 'server stream error NOT_FOUND', async () => {
    const { books, err } = await stream(client, base, m, { parent: 'shelves/999' });
    assert(err, 'expected NOT_FOUND, the stream ended OK');
    assert(err.code === grpcWeb.StatusCode.NOT_FOUND, describe(err));
    assert(books.length === 0, `received ${books.length} books`);
    return `"${err.message}"`;
  });

  await check(results, 'server stream failing midway ABORTED', async () => {
    const { books, err } = await stream(client, base, m, { parent: 'shelves/1' }, { 'x-fail-after': '2' });
    assert(err, 'expected ABORTED, the stream ended OK');
    assert(err.code === grpcWeb.StatusCode.ABORTED, describe(err));
    assert(show(books.map((b) => b.title)) === show(SHELF1_TITLES.slice(0, 2)), `received ${books.length} books`);
    return '2 books, then the status';
  });

  return results;
}
