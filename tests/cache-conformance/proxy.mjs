// Loaded with NODE_OPTIONS=--import: every fetch in the process goes through the proxy in
// VIGIL_PROXY, as absolute-form HTTP requests (proxyTunnel: false), as a browser or a tool
// configured with an HTTP proxy would send them.
import { ProxyAgent, setGlobalDispatcher } from 'undici'

const uri = process.env.VIGIL_PROXY
if (!uri) throw new Error('VIGIL_PROXY is not set')
setGlobalDispatcher(new ProxyAgent({ uri, proxyTunnel: false }))
