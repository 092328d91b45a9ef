// The HTML page of an AsyncAPI document: channels, their operations, the messages
// with their payload schemas and an example each, and the shared schemas. Rendered on
// the server into one self-contained page: no script, no CDN, nothing fetched.
import type { AsyncApiDocument } from './document.js'

type Obj = Record<string, unknown>

const CONSTRAINTS = ['format', 'pattern', 'minLength', 'maxLength', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'multipleOf', 'minItems', 'maxItems', 'uniqueItems', 'minProperties', 'maxProperties', 'default']

export function escapeHtml (value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

/** Inline `code` spans of the document's prose, escaped. */
function prose (text: unknown): string {
  return escapeHtml(text ?? '').replace(/`([^`]+)`/g, '<code>$1</code>')
}

function anchor (kind: string, name: string): string {
  return `${kind}-${name.replace(/[^A-Za-z0-9_-]/g, '_')}`
}

/** The object a local `$ref` points at, and the last part of its path. */
function resolve (doc: AsyncApiDocument, value: unknown): { target: Obj, name: string } {
  const ref = (value as Obj)?.$ref
  if (typeof ref !== 'string' || !ref.startsWith('#/')) return { target: (value ?? {}) as Obj, name: '' }
  const parts = ref.slice(2).split('/').map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
  let target: unknown = doc
  for (const part of parts) target = (target as Obj)?.[part]
  return { target: (target ?? {}) as Obj, name: parts[parts.length - 1] }
}

/** The values of an `enum`, or of a union of constants (TypeBox's union of literals). */
function literalsOf (schema: Obj): unknown[] | undefined {
  if (Array.isArray(schema.enum)) return schema.enum
  const options = schema.anyOf ?? schema.oneOf
  if (Array.isArray(options) && options.length > 0 && options.every((o) => (o as Obj)?.const !== undefined)) return options.map((o) => (o as Obj).const)
  return undefined
}

function typeLabel (schema: Obj): string {
  if (typeof schema.$ref === 'string') {
    const name = schema.$ref.split('/').pop() as string
    return schema.$ref.startsWith('#/components/schemas/') ? `<a href="#${anchor('schema', name)}">${escapeHtml(name)}</a>` : escapeHtml(schema.$ref)
  }
  if (schema.const !== undefined) return `<span class="lit">${escapeHtml(JSON.stringify(schema.const))}</span>`
  const literals = literalsOf(schema)
  if (literals !== undefined) return `one of ${literals.map((v) => `<span class="lit">${escapeHtml(JSON.stringify(v))}</span>`).join(' | ')}`
  if (Array.isArray(schema.anyOf) || Array.isArray(schema.oneOf)) return 'one of'
  if (Array.isArray(schema.allOf)) return 'all of'
  if (schema.type === 'array') return 'array of'
  if (schema.type === undefined) return schema.not === undefined ? 'any' : 'never'
  return escapeHtml(Array.isArray(schema.type) ? schema.type.join(' | ') : schema.type)
}

function notes (schema: Obj): string {
  const parts: string[] = []
  for (const key of CONSTRAINTS) if (schema[key] !== undefined) parts.push(`${key}: <code>${escapeHtml(JSON.stringify(schema[key]))}</code>`)
  if (schema.additionalProperties === false) parts.push('no other properties')
  if (Array.isArray(schema.examples)) parts.push(`e.g. <code>${escapeHtml(schema.examples.map((e) => JSON.stringify(e)).join(', '))}</code>`)
  const text = [
    typeof schema.title === 'string' ? `<span class="title">${escapeHtml(schema.title)}</span>` : '',
    typeof schema.description === 'string' ? `<span class="desc">${prose(schema.description)}</span>` : '',
    parts.length > 0 ? `<span class="rules">${parts.join(', ')}</span>` : ''
  ].filter((s) => s.length > 0)
  return text.length === 0 ? '' : ` ${text.join(' ')}`
}

/** A schema as a nested list; `$ref`s are links to the shared schemas below. */
export function renderSchema (schema: unknown, depth = 0): string {
  if (typeof schema === 'boolean') return `<span class="type">${schema ? 'any' : 'never'}</span>`
  const s = (schema ?? {}) as Obj
  if (depth > 12) return '<span class="type">…</span>'
  const head = `<span class="type">${typeLabel(s)}</span>${notes(s)}`
  const children: string[] = []
  if (typeof s.$ref !== 'string' && literalsOf(s) === undefined) {
    const required = new Set(Array.isArray(s.required) ? s.required as string[] : [])
    for (const [name, sub] of Object.entries((s.properties ?? {}) as Obj)) {
      children.push(`<li><code class="prop">${escapeHtml(name)}</code>${required.has(name) ? '' : ' <span class="opt">optional</span>'} ${renderSchema(sub, depth + 1)}</li>`)
    }
    for (const key of ['anyOf', 'oneOf', 'allOf'] as const) {
      if (Array.isArray(s[key])) for (const sub of s[key] as unknown[]) children.push(`<li>${renderSchema(sub, depth + 1)}</li>`)
    }
    if (s.items !== undefined && !Array.isArray(s.items)) children.push(`<li>${renderSchema(s.items, depth + 1)}</li>`)
  }
  return children.length === 0 ? head : `${head}<ul>${children.join('')}</ul>`
}

function renderMessage (doc: AsyncApiDocument, ref: unknown): string {
  const { target: inChannel } = resolve(doc, ref)
  const { target: message, name } = resolve(doc, inChannel)
  const examples = Array.isArray(message.examples) ? message.examples as Obj[] : []
  return `<div class="message" id="${anchor('message', name)}">
<h5>${escapeHtml(message.title ?? message.name ?? name)} <span class="frame">type <code>${escapeHtml(message.name)}</code></span></h5>
<p>${prose(message.summary)}</p>
<div class="schema">${renderSchema(message.payload)}</div>
${examples.map((e) => `<pre class="example">${escapeHtml(JSON.stringify(e.payload, null, 2))}</pre>`).join('')}
</div>`
}

function renderOperation (doc: AsyncApiDocument, key: string, op: Obj): string {
  const reply = op.reply as Obj | undefined
  const who = op.action === 'receive' ? 'client → server' : 'server → client'
  return `<section class="operation" id="${anchor('operation', key)}">
<h4><span class="badge ${escapeHtml(op.action)}">${who}</span> ${escapeHtml(op.title ?? key)}</h4>
<p>${prose(op.summary)}${op.description === undefined ? '' : ` ${prose(op.description)}`}</p>
${(op.messages as unknown[]).map((m) => renderMessage(doc, m)).join('\n')}
${reply === undefined ? '' : `<div class="reply"><h5 class="answers">Answers (server → client)</h5>${(reply.messages as unknown[]).map((m) => renderMessage(doc, m)).join('\n')}</div>`}
</section>`
}

/** `links`: where the same document is served as JSON and YAML, shown in the header. */
export function renderPage (doc: AsyncApiDocument, links?: { json: string, yaml: string }): string {
  const server = Object.values(doc.servers)[0] as Obj
  const url = `${server.protocol}://${server.host}${server.pathname}`
  const byChannel = new Map<string, Array<[string, Obj]>>()
  for (const [key, op] of Object.entries(doc.operations)) {
    const channel = resolve(doc, op.channel).name
    byChannel.set(channel, [...(byChannel.get(channel) ?? []), [key, op]])
  }
  const channels = Object.entries(doc.channels).map(([key, channel]) => `<section class="channel" id="${anchor('channel', key)}">
<h3>${channel.address === null ? escapeHtml(channel.title) : `<code>${escapeHtml(channel.address)}</code>`}</h3>
<p>${prose(channel.description)}</p>
${channel.parameters === undefined
  ? ''
  : `<dl class="params">${Object.entries(channel.parameters as Obj).map(([name, p]) => `<dt><code>{${escapeHtml(name)}}</code></dt><dd>${prose((p as Obj).description)}</dd>`).join('')}</dl>`}
${(byChannel.get(key) ?? []).map(([opKey, op]) => renderOperation(doc, opKey, op)).join('\n')}
</section>`).join('\n')
  const toc = Object.entries(doc.channels).map(([key, channel]) =>
    `<li><a href="#${anchor('channel', key)}">${escapeHtml(channel.address ?? channel.title)}</a><ul>${(byChannel.get(key) ?? []).map(([opKey, op]) => `<li><a href="#${anchor('operation', opKey)}">${escapeHtml(op.title ?? opKey)}</a></li>`).join('')}</ul></li>`).join('')
  const schemas = Object.entries(doc.components.schemas).map(([name, schema]) =>
    `<section class="shared" id="${anchor('schema', name)}"><h4>${escapeHtml(name)}</h4><div class="schema">${renderSchema(schema)}</div></section>`).join('\n')
  const security = Object.values(doc.components.securitySchemes ?? {}).map((s) => `<p class="security"><strong>Authentication:</strong> ${prose(s.description)}</p>`).join('')
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(doc.info.title)} ${escapeHtml(doc.info.version)} · AsyncAPI</title>
<style>${STYLE}</style>
</head>
<body>
<nav><h2>Channels</h2><ul>${toc}</ul>${schemas.length === 0 ? '' : '<h2><a href="#schemas">Shared schemas</a></h2>'}</nav>
<main>
<header>
<h1>${escapeHtml(doc.info.title)} <span class="version">${escapeHtml(doc.info.version)}</span></h1>
<p>${prose(doc.info.description)}</p>
<p class="server"><strong>Server:</strong> <code>${escapeHtml(url)}</code> — ${prose(server.description)}</p>
${security}
<p class="meta">AsyncAPI ${escapeHtml(doc.asyncapi)}${links === undefined ? '' : ` · also as <a href="${escapeHtml(links.json)}" rel="alternate">JSON</a> and <a href="${escapeHtml(links.yaml)}" rel="alternate">YAML</a>`}</p>
</header>
<h2>Channels</h2>
${channels}
${schemas.length === 0 ? '' : `<h2 id="schemas">Shared schemas</h2>\n${schemas}`}
</main>
</body>
</html>
`
}

const STYLE = `
*{box-sizing:border-box}
body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1f2328;background:#f6f8fa;display:flex}
nav{position:sticky;top:0;height:100vh;overflow:auto;width:17rem;flex:none;padding:1rem;background:#fff;border-right:1px solid #d0d7de;font-size:14px}
nav ul{list-style:none;padding-left:.8rem;margin:.2rem 0}
nav>ul{padding-left:0}
nav h2{font-size:15px;margin:.5rem 0}
main{flex:1;min-width:0;padding:1rem 2rem 4rem;max-width:70rem}
a{color:#0969da;text-decoration:none}
a:hover{text-decoration:underline}
h1 .version{font-size:.6em;color:#57606a;font-weight:normal}
code{font:13px ui-monospace,SFMono-Regular,Menlo,monospace;background:#eff2f5;padding:.05rem .3rem;border-radius:4px}
.channel{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:.5rem 1.2rem 1rem;margin:1rem 0}
.channel>h3{font-size:20px;margin:.6rem 0}
.operation{border-top:1px solid #d0d7de;padding-top:.4rem;margin-top:1rem}
.operation h4{margin:.5rem 0;font-size:16px}
.badge{font-size:12px;padding:.1rem .5rem;border-radius:10px;color:#fff;vertical-align:middle}
.badge.receive{background:#1a7f37}
.badge.send{background:#8250df}
.message{border-left:3px solid #d0d7de;padding:.1rem 0 .3rem .9rem;margin:.6rem 0}
.message h5{margin:.3rem 0;font-size:14px}
.message p{margin:.2rem 0;color:#57606a}
.reply{margin-left:1.2rem}
.answers{margin:.6rem 0 0;font-size:13px;color:#57606a;text-transform:uppercase;letter-spacing:.03em}
.frame{font-weight:normal;color:#57606a;font-size:12px}
.schema{font-size:14px}
.schema ul{list-style:none;margin:.1rem 0;padding-left:1.1rem;border-left:1px dotted #afb8c1}
.type{color:#953800;font-family:ui-monospace,monospace;font-size:13px}
.lit{color:#0a3069}
.prop{font-weight:600;background:none;padding:0}
.opt{font-size:11px;color:#57606a;border:1px solid #d0d7de;border-radius:8px;padding:0 .35rem}
.desc{color:#1f2328}
.title{font-style:italic;color:#57606a}
.rules{color:#57606a;font-size:12px}
pre.example{background:#0d1117;color:#e6edf3;padding:.6rem .8rem;border-radius:6px;overflow:auto;font-size:12.5px;margin:.4rem 0}
.params dt{font-weight:600}
.params dd{margin:0 0 .4rem 1rem}
.shared{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:.3rem 1rem .8rem;margin:.8rem 0}
.meta,.server,.security{color:#57606a}
@media (max-width:800px){body{display:block}nav{position:static;width:auto;height:auto}}
`
