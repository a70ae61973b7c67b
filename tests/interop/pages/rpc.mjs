// The browser page's script, bundled with esbuild at test time: the same
// suites as in Node, from a page on another origin than the gateway, with
// the descriptor set fetched from the page's own origin at run time.

import { loadRegistry } from '../lib/registry.mjs';
import { refusedChecks, suites } from '../lib/suites.mjs';

async function api() {
  const res = await fetch('/library.binpb');
  if (!res.ok) throw new Error(`/library.binpb: HTTP ${res.status}`);
  return loadRegistry(new Uint8Array(await res.arrayBuffer()));
}

window.interop = {
  /** [{label, results: [{name, error?}]}] */
  async run(base, only) {
    const ctx = { base, api: await api(), browser: true };
    const out = [];
    for (const s of suites.filter((s) => !only || s.label.includes(only))) {
      out.push({ label: s.label, results: await s.run(ctx) });
    }
    return out;
  },
  async refused(base) {
    return refusedChecks(base, await api());
  },
};
document.title = 'protogate interop: ready';
