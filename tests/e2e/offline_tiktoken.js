// Preload for running Flowise offline (NODE_OPTIONS="--require <this file>").
//
// After every streamed LLM call, @langchain/openai estimates token usage with js-tiktoken, which
// fetches https://tiktoken.pages.dev/js/<encoding>.json. Offline, that fetch is retried with
// exponential backoff for ~3 minutes per call. This shim answers those URLs (and only those) from
// the ranks shipped in the js-tiktoken npm package next to this file, so nothing leaves the machine.
'use strict'
const path = require('path')

const PREFIX = 'https://tiktoken.pages.dev/js/'
const RANKS_DIR = path.join(__dirname, 'node_modules', 'js-tiktoken', 'dist', 'ranks')
const originalFetch = globalThis.fetch

globalThis.fetch = async function offlineTiktokenFetch(input, init) {
    const url = typeof input === 'string' ? input : input && input.url ? input.url : String(input)
    if (!url.startsWith(PREFIX)) return originalFetch(input, init)
    const encoding = url.slice(PREFIX.length).replace(/\.json$/, '')
    if (!/^[A-Za-z0-9_]+$/.test(encoding)) return new Response('bad encoding', { status: 404 })
    try {
        const ranks = require(path.join(RANKS_DIR, encoding + '.cjs'))
        const body = JSON.stringify(ranks.default || ranks)
        return new Response(body, { status: 200, headers: { 'content-type': 'application/json' } })
    } catch (err) {
        return new Response('unknown encoding ' + encoding, { status: 404 })
    }
}
