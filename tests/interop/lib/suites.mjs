// The client suites, the same in Node and in the browser page: each is a
// third-party client with one wire format against the gateway's one listener.

import { Code, ConnectError, createClient } from '@connectrpc/connect';
import { createConnectTransport, createGrpcWebTransport } from '@connectrpc/connect-web';
import { connectChecks, connectGetChecks } from './connect-checks.mjs';
import { grpcWebTextChecks } from './grpc-web-checks.mjs';

/**
 * [{label, run(ctx) → [{name, error?}]}], where ctx is {base, api, browser}:
 * the gateway's URL, registry.mjs' loadRegistry(), whether in a browser.
 */
export const suites = [
  {
    label: 'connect-web gRPC-Web (application/grpc-web+proto)',
    run: ({ base, api }) => connectChecks({ api, transport: createGrpcWebTransport({ baseUrl: base }) }),
  },
  {
    label: 'connect-web Connect JSON (application/json, connect+json)',
    run: ({ base, api }) => connectChecks({
      api,
      transport: createConnectTransport({ baseUrl: base, jsonOptions: { registry: api.registry } }),
    }),
  },
  {
    label: 'connect-web Connect binary (application/proto, connect+proto)',
    run: ({ base, api }) => connectChecks({ api, transport: createConnectTransport({ baseUrl: base, useBinaryFormat: true }) }),
  },
  {
    label: 'grpc-web text (application/grpc-web-text)',
    // In Node, the XMLHttpRequest polyfill (xhr2) hands over the response
    // only when it is complete, so there the stream's timing is not checked.
    run: ({ base, api, browser }) => grpcWebTextChecks({ base, api, incremental: browser }),
  },
  {
    label: 'connect-web Connect GET JSON (?encoding=json)',
    run: ({ base, api }) => connectGetChecks({
      api,
      encoding: 'json',
      transportFor: (fetch) => createConnectTransport({ baseUrl: base, useHttpGet: true, fetch }),
    }),
  },
  {
    label: 'connect-web Connect GET binary (?encoding=proto)',
    run: ({ base, api }) => connectGetChecks({
      api,
      encoding: 'proto',
      transportFor: (fetch) => createConnectTransport({ baseUrl: base, useHttpGet: true, useBinaryFormat: true, fetch }),
    }),
  },
];

/**
 * From an origin CORS does not allow, a unary call must fail in the browser
 * (the response is withheld from the page). Resolves to [{name, error?}].
 */
export async function refusedChecks(base, api) {
  const results = [];
  const transports = {
    'connect-web gRPC-Web': createGrpcWebTransport({ baseUrl: base }),
    'connect-web Connect JSON': createConnectTransport({ baseUrl: base }),
  };
  for (const [label, transport] of Object.entries(transports)) {
    const name = `${label}: unary GetBook refused`;
    try {
      const book = await createClient(api.service, transport).getBook({ name: 'shelves/1/books/1' }, { timeoutMs: 10000 });
      results.push({ name, error: `the page read the response: ${JSON.stringify(book.title)}` });
    } catch (e) {
      const ok = e instanceof ConnectError && e.code !== Code.DeadlineExceeded;
      results.push(ok ? { name: `${name} ([${Code[e.code]}] ${e.rawMessage})` } : { name, error: String(e) });
    }
  }
  return results;
}
