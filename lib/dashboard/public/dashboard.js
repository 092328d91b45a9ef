// The dashboard page: live snapshots over the plugin's own WebSocket protocol, drawn
// with uPlot (served beside this file), and the connections table over the HTTP API.
/* global uPlot, location */
/* eslint new-cap: ["error", { "newIsCapExceptions": ["uPlot"] }] */
(function () {
  'use strict'
  const body = document.body
  const base = body.dataset.base
  const topic = body.dataset.topic
  const POINTS = 120
  const $ = (id) => document.getElementById(id)
  const state = { selfId: null, search: '', lastTable: 0 }
  const series = { t: [], connections: [], in: [], out: [], deliveries: [], dropped: [], errors: [], p50: [], p99: [], cpu: [], rss: [] }

  function chart (id, title, lines, scales) {
    const el = $(id)
    const opts = {
      title,
      width: el.clientWidth - 8,
      height: 190,
      scales: scales || { x: { time: true } },
      series: [{}].concat(lines),
      axes: [{}, { size: 50 }].concat(lines.some((l) => l.scale === 'mb') ? [{ scale: 'mb', side: 1, grid: { show: false } }] : []),
      legend: { live: false }
    }
    return new uPlot(opts, [[]].concat(lines.map(() => [])), el)
  }

  const charts = {
    connections: chart('chart-connections', 'Connections', [{ label: 'open', stroke: '#2f6fdf', fill: '#2f6fdf22' }]),
    messages: chart('chart-messages', 'Messages per second', [{ label: 'in', stroke: '#2aa876' }, { label: 'out', stroke: '#e8833a' }]),
    deliveries: chart('chart-deliveries', 'Deliveries, dropped, errors per second', [{ label: 'deliveries', stroke: '#8e44ad' }, { label: 'dropped', stroke: '#c0392b' }, { label: 'errors', stroke: '#7f8c8d' }]),
    latency: chart('chart-latency', 'Handler latency (ms)', [{ label: 'p50', stroke: '#16a085' }, { label: 'p99', stroke: '#d35400' }]),
    process: chart('chart-process', 'Process', [{ label: 'CPU %', stroke: '#34495e' }, { label: 'memory MB', stroke: '#f39c12', scale: 'mb' }], { x: { time: true }, mb: {} })
  }
  window.realtimeDashboard = { charts, series }

  function push (key, value) {
    const list = series[key]
    list.push(value)
    if (list.length > POINTS) list.shift()
  }

  function text (id, value) { $(id).textContent = value === null || value === undefined ? '–' : String(value) }

  function rowsOf (table, entries) {
    const tbody = $(table).tBodies[0]
    tbody.replaceChildren(...entries.map(([k, v]) => {
      const tr = document.createElement('tr')
      for (const cell of [k, v]) {
        const td = document.createElement('td')
        td.textContent = String(cell)
        tr.appendChild(td)
      }
      return tr
    }))
  }

  function onSnapshot (s) {
    // Each figure is charted (its series) and shown on its tile (`tile-<name>`).
    const figures = {
      connections: s.connections.open,
      in: s.rates.in,
      out: s.rates.out,
      deliveries: s.rates.deliveries,
      dropped: s.rates.dropped,
      errors: s.rates.errors,
      p50: s.latency.p50,
      p99: s.latency.p99,
      cpu: s.process.cpu,
      rss: Math.round(s.process.rss / 1048576)
    }
    push('t', s.t / 1000)
    for (const [name, value] of Object.entries(figures)) {
      push(name, value)
      text('tile-' + name, value)
    }
    charts.connections.setData([series.t, series.connections])
    charts.messages.setData([series.t, series.in, series.out])
    charts.deliveries.setData([series.t, series.deliveries, series.dropped, series.errors])
    charts.latency.setData([series.t, series.p50, series.p99])
    charts.process.setData([series.t, series.cpu, series.rss])
    const broker = $('broker')
    broker.textContent = s.broker ? 'broker up' : 'broker down'
    broker.className = s.broker ? 'badge' : 'badge off'
    text('updated', 'updated ' + new Date(s.t).toLocaleTimeString())
    rowsOf('patterns', Object.entries(s.patterns).filter(([p]) => p !== topic).sort((a, b) => b[1] - a[1]))
    rowsOf('errors', Object.entries(s.errors).sort((a, b) => b[1] - a[1]))
    if (Date.now() - state.lastTable > 1900) loadTable()
  }

  // ------------------------------------------------------------------ live link
  async function connect () {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:'
    const link = $('link')
    // Where the server authenticates by message, the page asks its own API for a token first.
    let token = null
    if (body.dataset.auth === 'token') {
      const response = await fetch(base + '/api/token').catch(() => null)
      if (response === null || !response.ok) {
        link.textContent = 'no token'
        setTimeout(connect, 2000)
        return
      }
      token = (await response.json()).token
    }
    const ws = new WebSocket(scheme + '//' + location.host + body.dataset.ws, 'realtime.v1')
    ws.onopen = () => {
      if (token !== null) ws.send(JSON.stringify({ type: 'auth', id: 0, data: { token } }))
    }
    ws.onmessage = (event) => {
      const frame = JSON.parse(event.data)
      if (frame.type === 'welcome') {
        state.selfId = frame.data.connectionId
        ws.send(JSON.stringify({ type: 'subscribe', id: 1, data: { topic } }))
      } else if (frame.type === 'reply' && frame.id === 1) {
        link.textContent = 'live'
        link.className = 'badge'
      } else if (frame.type === 'error' && frame.id === 1) {
        link.textContent = 'not authorized: ' + frame.error.code
      } else if (frame.type === 'message' && frame.topic === topic) {
        onSnapshot(frame.data)
      }
    }
    ws.onclose = () => {
      link.textContent = 'reconnecting…'
      link.className = 'badge off'
      setTimeout(connect, 2000)
    }
  }

  // ------------------------------------------------------------------ connections table
  function since (ms) {
    const d = new Date(ms)
    return d.toLocaleTimeString() + ' (' + Math.round((Date.now() - ms) / 1000) + ' s)'
  }

  async function loadTable () {
    state.lastTable = Date.now()
    const response = await fetch(base + '/api/connections?q=' + encodeURIComponent(state.search))
    if (!response.ok) return
    const data = await response.json()
    $('count').textContent = '(' + data.matched + ' of ' + data.total + (data.rows.length < data.matched ? ', first ' + data.rows.length + ' shown' : '') + ')'
    $('table').tBodies[0].replaceChildren(...data.rows.map(row))
  }

  function row (c) {
    const tr = document.createElement('tr')
    tr.dataset.id = c.id
    const cells = [c.id + (c.id === state.selfId ? ' (this page)' : ''), c.userId || '–', c.address, since(c.connectedAt), c.subscriptions.join(', '), c.queuedBytes, c.messagesIn, c.messagesOut]
    cells.forEach((value, i) => {
      const td = document.createElement('td')
      td.textContent = String(value)
      if (i === 0) td.className = 'mono'
      tr.appendChild(td)
    })
    const actions = document.createElement('td')
    actions.appendChild(button('disconnect', 'disconnect-connection', { connectionId: c.id }))
    if (c.userId) actions.appendChild(button('disconnect user', 'disconnect-user', { userId: c.userId }))
    tr.appendChild(actions)
    return tr
  }

  function button (label, name, target) {
    const b = document.createElement('button')
    b.textContent = label
    b.name = name
    b.onclick = () => disconnect(target)
    return b
  }

  async function disconnect (target) {
    const response = await fetch(base + '/api/disconnect', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(target) })
    const answer = await response.json()
    $('notice').textContent = response.ok
      ? 'Disconnected ' + (answer.disconnected === 'user' ? 'user ' + answer.userId : 'connection ' + answer.connectionId) + ' (4503)'
      : 'Not done: ' + answer.message
    loadTable()
  }

  let typing
  $('search').addEventListener('input', (event) => {
    state.search = event.target.value
    clearTimeout(typing)
    typing = setTimeout(loadTable, 200)
  })

  connect()
  loadTable()
})()
