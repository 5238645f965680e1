// Touchline live scoreboard. Plain browser JS, no build step.
//
// One multiplexed EventSource (`events?match=…`) carries every match on the page, so the page
// uses one of the browser's ~six connections per host. A stream carries at most 64 matches,
// so the page shows the 64 most recently active ones (the first page of `matches?limit=64`).
//
// State: each event may carry `state`, a JSON merge patch (RFC 7386) that the page folds in.
// Events without one are applied by the football convention (a goal adds one to a score), and a
// periodic re-read of `matches` reconciles any state the page got wrong (see reconcile()).
//
// Reconnects are done by the page, not left to EventSource: the browser gives up for good on a
// non-200 answer (503 at capacity, a proxy with no backend), and a re-opened stream URL may hold a
// stale `lastEventId` that would compete with the browser's Last-Event-ID header. One path for all.

const MAX_MATCHES = 64 // the server's MAX_MATCHES_PER_STREAM default
const LIST_REFRESH_MS = 10_000 // how often new matches are looked for, and states reconciled
const LIST_REFRESH_JITTER = 0.5 // ±25% around LIST_REFRESH_MS so many pages do not poll in step
const MIN_REFRESH_S = 1
const MAX_REFRESH_S = 300
const FEED_LIMIT = 40 // feed items kept in the DOM
const REOPEN_BASE_MS = 1_000 // first reconnect waits up to this (full jitter); the server's default retry
const REOPEN_MAX_MS = 30_000 // backoff ceiling
const RETRY_AFTER_JITTER = 0.25 // up to 25% added to a server's Retry-After so pages do not return in step
const HIGHLIGHT_CLASS = 'changed'
const CLUSTER_READ_ATTEMPTS = 3 // extra tries to name the node after a reconnect

/**
 * Event types of the football convention. EventSource delivers only types it listens for; an event of
 * another type still reaches the page's state through the periodic reconcile() with `matches`.
 */
const MATCH_EVENT_TYPES = ['kickoff', 'goal', 'card', 'substitution', 'halftime', 'fulltime', 'message', 'minute']
/** Clock ticks (the demo producer's `minute`, sent in a quiet minute) move the clock but make no feed line. */
const CLOCK_ONLY_TYPES = new Set(['minute'])
const SNAPSHOT_TYPE = 'snapshot'
/** Optional server greeting naming the node that serves this very stream (see onHello). */
const HELLO_TYPE = 'touchline.hello'
const LIVE_STATUSES = new Set(['live', 'half-time'])
const CONVENTION_KEYS = new Set(['home', 'away', 'homeScore', 'awayScore', 'minute', 'status'])
const STATUS_LABELS = { scheduled: 'not started', live: 'live', 'half-time': 'HT', 'full-time': 'FT' }
const FEED_LABELS = {
  kickoff: 'Kick-off', goal: 'Goal', card: 'Card', substitution: 'Sub',
  halftime: 'Half-time', fulltime: 'Full-time', message: 'Update',
}

const $ = (testid) => document.querySelector(`[data-testid="${testid}"]`)
const ui = {
  conn: $('conn-state'),
  node: $('node'),
  live: $('live-matches'),
  other: $('other-matches'),
  otherSection: $('other-section'),
  noLive: $('no-live'),
  feed: $('feed'),
  feedEmpty: $('feed-empty'),
  count: $('match-count'),
}

/** match id -> { id, state, row, suspect: { id } | null } in the order first seen. */
const matches = new Map()
let source = null
let lastEventId = ''
let hasOpened = false
let disrupted = false
let reopenTimer = 0
let reopenAttempts = 0
let connectionSerial = 0
let nodeNamedByStream = false
let lastRetryAfterMs // the Retry-After of the last refused list request, ms (undefined when none)

// ---------- JSON merge patch (RFC 7386) ----------

function isObject(v) {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** Pure; writes with defineProperty so a `__proto__` key stays a plain key. */
function mergePatch(target, patch) {
  if (!isObject(patch)) return patch
  const out = {}
  if (isObject(target)) for (const [k, v] of Object.entries(target)) setKey(out, k, v)
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k]
    else setKey(out, k, mergePatch(Object.hasOwn(out, k) ? out[k] : undefined, v))
  }
  return out
}

function setKey(obj, key, value) {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true })
}

function sameJson(a, b) {
  return JSON.stringify(a) === JSON.stringify(b)
}

// ---------- state changes without a patch: the football convention ----------

function applyConvention(state, type, data) {
  const next = { ...state }
  const d = isObject(data) ? data : {}
  if (typeof d.minute === 'number') next.minute = d.minute
  if (type === 'kickoff') next.status = 'live'
  else if (type === 'halftime') next.status = 'half-time'
  else if (type === 'fulltime') next.status = 'full-time'
  else if (type === 'goal' && (d.team === 'home' || d.team === 'away')) {
    const key = d.team === 'home' ? 'homeScore' : 'awayScore'
    next[key] = (typeof next[key] === 'number' ? next[key] : 0) + 1
  }
  return next
}

// ---------- rendering ----------

function el(tag, attrs, text) {
  const node = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v)
  if (text !== undefined) node.textContent = text
  return node
}

function createRow(id) {
  const row = el('li', { class: 'match', 'data-match': id })
  const home = el('span', { class: 'team home', 'data-testid': 'home-team' })
  const score = el('span', { class: 'score', 'data-testid': 'score' })
  score.append(
    el('span', { 'data-testid': 'home-score' }),
    el('span', { class: 'sep', 'aria-hidden': 'true' }, '–'),
    el('span', { 'data-testid': 'away-score' }),
  )
  const away = el('span', { class: 'team away', 'data-testid': 'away-team' })
  const clock = el('span', { class: 'clock' })
  clock.append(el('span', { 'data-testid': 'minute' }), el('span', { class: 'status', 'data-testid': 'status' }))
  const extra = el('span', { class: 'extra', 'data-testid': 'extra' })
  row.append(home, score, away, clock, extra)
  return row
}

function setText(row, testid, text) {
  const node = row.querySelector(`[data-testid="${testid}"]`)
  if (node.textContent !== text) node.textContent = text
}

function renderMatch(m) {
  const s = m.state
  const row = m.row
  const hasTeams = typeof s.home === 'string' || typeof s.away === 'string'
  const scoreNode = row.querySelector('[data-testid="score"]')
  const scoreBefore = row.isConnected ? scoreNode.textContent : null
  setText(row, 'home-team', hasTeams ? String(s.home ?? '') : m.id)
  setText(row, 'away-team', hasTeams ? String(s.away ?? '') : '')
  setText(row, 'home-score', s.homeScore === undefined ? '' : String(s.homeScore))
  setText(row, 'away-score', s.awayScore === undefined ? '' : String(s.awayScore))
  setText(row, 'minute', typeof s.minute === 'number' ? `${s.minute}'` : '')
  const status = typeof s.status === 'string' ? s.status : ''
  setText(row, 'status', STATUS_LABELS[status] ?? status)
  const extras = Object.entries(s).filter(([k]) => !CONVENTION_KEYS.has(k))
  setText(row, 'extra', extras.map(([k, v]) => `${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' · '))
  row.dataset.status = status
  scoreNode.setAttribute('aria-label', `${s.homeScore ?? '-'} to ${s.awayScore ?? '-'}`)
  if (scoreBefore !== null && scoreNode.textContent !== scoreBefore) highlight(scoreNode)
  const list = LIVE_STATUSES.has(status) ? ui.live : ui.other
  if (row.parentElement !== list) list.prepend(row)
  updateEmptyStates()
}

function updateEmptyStates() {
  ui.noLive.hidden = ui.live.childElementCount > 0
  ui.otherSection.hidden = ui.other.childElementCount === 0
}

function highlight(node) {
  node.classList.remove(HIGHLIGHT_CLASS)
  void node.offsetWidth // restarts the CSS animation
  node.classList.add(HIGHLIGHT_CLASS)
}

function matchTitle(m) {
  const s = m.state
  if (s.home === undefined && s.away === undefined) return m.id
  const score = s.homeScore !== undefined ? ` ${s.homeScore}–${s.awayScore ?? 0} ` : ' v '
  return `${s.home ?? ''}${score}${s.away ?? ''}`
}

function feedText(m, data) {
  const d = isObject(data) ? data : {}
  if (typeof d.text === 'string' && d.text !== '') return d.text
  const team = d.team === 'home' || d.team === 'away' ? m.state[d.team] ?? d.team : ''
  return [d.player, team ? `(${team})` : ''].filter(Boolean).join(' ')
}

function addFeedItem(m, type, data, eventId, ts) {
  const d = isObject(data) ? data : {}
  const item = el('li', { 'data-event-id': eventId, 'data-match': m.id, 'data-type': type })
  const when = Number.isFinite(ts) ? new Date(ts) : new Date()
  const minute = typeof d.minute === 'number' ? `${d.minute}'` : when.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })
  item.append(
    el('time', { datetime: when.toISOString() }, minute),
    el('span', { class: `kind kind-${type}` }, FEED_LABELS[type] ?? type),
    el('span', { class: 'text' }, feedText(m, data)),
    el('span', { class: 'where' }, matchTitle(m)),
  )
  // Newest first by publish time: a replay after a reconnect interleaves matches in arrival order.
  item.dataset.ts = String(when.getTime())
  let after = ui.feed.firstElementChild
  while (after && Number(after.dataset.ts) > when.getTime()) after = after.nextElementSibling
  ui.feed.insertBefore(item, after)
  while (ui.feed.childElementCount > FEED_LIMIT) ui.feed.lastElementChild.remove()
  ui.feedEmpty.hidden = true
}

/** connecting | live | reconnecting | resumed | idle (no match to follow yet) */
function setConn(state) {
  ui.conn.dataset.state = state
  ui.conn.textContent = state === 'idle' ? 'waiting for matches' : state
  document.body.dataset.conn = state
}

function setNode(id, source) {
  ui.node.textContent = id
  ui.node.dataset.source = source
}

// ---------- the stream ----------

function streamUrl() {
  const params = new URLSearchParams()
  for (const id of matches.keys()) params.append('match', id)
  // The first connection of a page has no id (it gets snapshots); later ones resume exactly.
  if (lastEventId !== '') params.set('lastEventId', lastEventId)
  // Ask the node to name itself on the stream (opt-in `touchline.hello`, see onHello).
  params.set('hello', '1')
  return `events?${params}`
}

function openStream() {
  clearTimeout(reopenTimer)
  reopenTimer = 0
  if (source) source.close()
  source = null
  if (matches.size === 0) {
    setConn('idle')
    return
  }
  if (!hasOpened) setConn('connecting')
  const serial = ++connectionSerial
  nodeNamedByStream = false
  const es = new EventSource(streamUrl())
  source = es
  es.onopen = () => {
    reopenAttempts = 0
    hasOpened = true
    setConn(disrupted ? 'resumed' : 'live')
    readClusterNode(serial)
  }
  es.onerror = () => {
    if (source !== es) return
    es.close()
    source = null
    disrupted = true
    setConn('reconnecting')
    scheduleReopen()
  }
  es.addEventListener(SNAPSHOT_TYPE, (e) => onSnapshot(e))
  es.addEventListener(HELLO_TYPE, (e) => onHello(e))
  for (const type of MATCH_EVENT_TYPES) es.addEventListener(type, (e) => onMatchEvent(e))
}

/** Full-jitter exponential backoff: uniform in [0, min(cap, base·2^attempt)]. */
function scheduleReopen() {
  const ceiling = Math.min(REOPEN_MAX_MS, REOPEN_BASE_MS * 2 ** reopenAttempts)
  reopenAttempts++
  reopenTimer = setTimeout(openStream, Math.random() * ceiling)
}

/** A changed match set re-opens the stream, unless a reconnect is already due (it will use the new set). */
function restartStream() {
  if (reopenTimer === 0) openStream()
}

function parse(e) {
  try {
    const payload = JSON.parse(e.data)
    return isObject(payload) ? payload : null
  } catch {
    return null
  }
}

function remember(e) {
  if (e.lastEventId !== '') lastEventId = e.lastEventId
}

function onSnapshot(e) {
  remember(e)
  const payload = parse(e)
  const m = payload && matches.get(payload.match)
  if (!m) return
  m.state = isObject(payload.state) ? payload.state : {}
  m.suspect = null
  renderMatch(m)
}

function onMatchEvent(e) {
  remember(e)
  const payload = parse(e)
  const m = payload && matches.get(payload.match)
  if (!m) return
  if (payload.state !== undefined) {
    const next = mergePatch(m.state, payload.state)
    m.state = isObject(next) ? next : {}
  } else {
    m.state = applyConvention(m.state, e.type, payload.data)
  }
  renderMatch(m)
  if (!CLOCK_ONLY_TYPES.has(e.type)) addFeedItem(m, e.type, payload.data, e.lastEventId, payload.ts)
}

/** The stream may name its node; that beats /cluster, which a load balancer may answer from another node. */
function onHello(e) {
  const payload = parse(e)
  if (payload && typeof payload.node === 'string') {
    nodeNamedByStream = true
    setNode(payload.node, 'stream')
  }
}

/**
 * Names the node from /cluster. Behind an L4 balancer this request may reach another node than the
 * stream did; a `touchline.hello` event on the stream, when the server sends one, wins (onHello).
 */
async function readClusterNode(serial, attempt = 0) {
  try {
    const body = await getJson('cluster')
    if (serial === connectionSerial && !nodeNamedByStream && typeof body.node === 'string') setNode(body.node, 'cluster')
  } catch {
    // Informative only, but a label naming a dead node misleads: try a few more times on this connection.
    if (attempt < CLUSTER_READ_ATTEMPTS && serial === connectionSerial) {
      setTimeout(() => readClusterNode(serial, attempt + 1), REOPEN_BASE_MS)
    }
  }
}

// ---------- the match list ----------

/** A refused request; `retryAfterMs` is the server's Retry-After when it gave one. */
class RequestRefused extends Error {
  constructor(path, status, retryAfterMs) {
    super(`${path}: ${status}`)
    this.retryAfterMs = retryAfterMs
  }
}

async function getJson(path) {
  const res = await fetch(path, { headers: { accept: 'application/json' }, cache: 'no-store' })
  if (!res.ok) {
    const seconds = Number(res.headers.get('retry-after'))
    throw new RequestRefused(path, res.status, Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : undefined)
  }
  return res.json()
}

/**
 * Reconciles a match with the server's view. A difference is trusted only when it persists across two
 * reads with the same latest event id: a single read may race the stream (either may be ahead).
 */
function reconcile(m, listed) {
  if (sameJson(m.state, listed.state)) {
    m.suspect = null
  } else if (m.suspect && m.suspect.id === listed.id) {
    m.state = isObject(listed.state) ? listed.state : {}
    m.suspect = null
    renderMatch(m)
  } else {
    m.suspect = { id: listed.id }
  }
}

/** Loads the match list; false when it failed (with the server's Retry-After, when it gave one). */
async function refreshList() {
  let listed
  try {
    listed = (await getJson(`matches?limit=${MAX_MATCHES}`)).matches
  } catch (err) {
    lastRetryAfterMs = err instanceof RequestRefused ? err.retryAfterMs : undefined
    return false // the next refresh tries again; the stream is unaffected
  }
  if (!Array.isArray(listed)) return false
  // Most recently active first, then those already shown, up to the per-stream cap.
  const keep = new Set()
  for (const entry of listed) if (keep.size < MAX_MATCHES && typeof entry.match === 'string') keep.add(entry.match)
  for (const id of matches.keys()) if (keep.size < MAX_MATCHES) keep.add(id)

  let changed = false
  for (const [id, m] of matches) {
    if (!keep.has(id)) {
      m.row.remove()
      matches.delete(id)
      changed = true
    }
  }
  for (const entry of [...listed].reverse()) {
    if (!keep.has(entry.match)) continue
    const m = matches.get(entry.match)
    if (m) {
      reconcile(m, entry)
      continue
    }
    const added = { id: entry.match, state: isObject(entry.state) ? entry.state : {}, row: createRow(entry.match), suspect: null }
    matches.set(added.id, added)
    renderMatch(added)
    changed = true
  }
  ui.count.textContent = String(matches.size)
  updateEmptyStates()
  if (changed || (source === null && reopenTimer === 0)) restartStream()
  return true
}

function refreshInterval() {
  const fromUrl = Number(new URLSearchParams(location.search).get('refresh'))
  if (Number.isFinite(fromUrl) && fromUrl > 0) return Math.min(MAX_REFRESH_S, Math.max(MIN_REFRESH_S, fromUrl)) * 1000
  return LIST_REFRESH_MS
}

function scheduleListRefresh(intervalMs) {
  const delay = intervalMs * (1 - LIST_REFRESH_JITTER / 2 + Math.random() * LIST_REFRESH_JITTER)
  setTimeout(async () => {
    await refreshList()
    scheduleListRefresh(intervalMs)
  }, delay)
}

async function start() {
  setConn('connecting')
  readClusterNode(connectionSerial)
  const interval = refreshInterval()
  // A node that is not ready yet answers 503: try again soon rather than after a whole refresh period,
  // when the server says (Retry-After, with a little jitter), else with exponential backoff.
  for (let attempt = 0; !(await refreshList()); attempt++) {
    const wait =
      lastRetryAfterMs !== undefined
        ? lastRetryAfterMs * (1 + Math.random() * RETRY_AFTER_JITTER)
        : Math.random() * Math.min(interval, REOPEN_BASE_MS * 2 ** attempt)
    await new Promise((resolve) => setTimeout(resolve, Math.min(interval, wait)))
  }
  scheduleListRefresh(interval)
  // Back online: do not sit out the rest of a long backoff.
  window.addEventListener('online', () => {
    if (reopenTimer !== 0) openStream()
  })
}

start()
