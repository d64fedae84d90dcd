// Runs every cache-tests test (or only TEST_ID, with the requests and responses printed)
// against the origin at BASE, through the proxy that proxy.mjs installed, and prints the
// results as JSON in the format of the suite's results/*.json.
import { fetch, getGlobalDispatcher } from 'undici'
import { runTests, getResults } from 'http-cache-tests/client/runner.mjs'
import tests from 'http-cache-tests/tests/index.mjs'

const base = process.env.BASE
if (!base) throw new Error('BASE is not set')

// The Fetch standard adds "Cache-Control: no-cache" and "Pragma: no-cache" to every request
// that carries a conditional header (it turns the cache mode to no-store), so a cache in
// the path must not answer it from storage. The suite's tests (and the published results,
// measured with node-fetch) send the conditional alone; the headers the test did not set
// are taken off again just before the request is sent.
const conditional = ['if-modified-since', 'if-none-match', 'if-unmodified-since', 'if-match', 'if-range']
const dispatcher = getGlobalDispatcher().compose(dispatch => (opts, handler) => {
  const strip = opts.headers && opts.headers['x-strip']
  if (strip) {
    const headers = { ...opts.headers }
    for (const name of [...strip.split(','), 'x-strip']) delete headers[name]
    opts = { ...opts, headers }
  }
  return dispatch(opts, handler)
})
function asTheTestSent (url, init = {}) {
  const headers = new Headers(init.headers)
  if (conditional.some(n => headers.has(n))) {
    const strip = ['cache-control', 'pragma'].filter(n => !headers.has(n))
    if (strip.length) headers.set('x-strip', strip.join(','))
  }
  return fetch(url, { ...init, headers, dispatcher })
}

const only = process.env.TEST_ID
let selected = tests
if (only) {
  selected = tests.map(s => ({ ...s, tests: s.tests.filter(t => t.id === only) })).filter(s => s.tests.length)
  selected.forEach(s => s.tests.forEach(t => { t.dump = true }))
}
await runTests(selected, asTheTestSent, false, base)
console.log(JSON.stringify(getResults(), null, 2))
