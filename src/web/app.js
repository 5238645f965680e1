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
// non-200 answer (a proxy with no backend), and a re-opened stream URL may hold a stale `lastEventId`
// that would compete with the browser's Last-Event-ID header. One path for all, with one exception: a
// node that refuses the stream (at capacity, draining, rate limit) answers 200 with `retry:` and one
// `touchline.refused` event, and that EventSource is left to come back by itself after the wait.
//
// A connection can also die without closing (a phone changing networks): the stream asks for named
// heartbeats (`heartbeat=1`: `touchline.ping`, no id, after HEARTBEAT_MS of silence) and a watchdog
// re-opens it with the last id after about MISSED_BEATS heartbeats of silence. The page does not know
// the node's HEARTBEAT_MS: it assumes HEARTBEAT_DEFAULT_MS (or `?heartbeat=<s>`) and then learns the
// interval from the spacing of the pings it gets.
//
// A match that ends (`touchline.end` after its final event) stays on the page for ENDED_LINGER_MS (or
// `?endedLinger=<s>`), marked full time, then is dropped; ended matches the list names are not added.
// Once every match on the page has ended the stream is not re-opened (its resume would get 204).
//
// A tab hidden for HIDDEN_PAUSE_MS (or `?hiddenPause=<s>`) closes its stream and stops polling; back in
// view, it re-opens with its last id (nothing lost, nothing twice) and polls again.

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
const HEARTBEAT_DEFAULT_MS = 15_000 // the server's HEARTBEAT_MS default, assumed until pings tell
const MIN_HEARTBEAT_MS = 100 // the smallest HEARTBEAT_MS a node accepts
const MAX_HEARTBEAT_MS = 600_000
const MISSED_BEATS = 3 // this many heartbeats of silence: the connection is dead even if it never closed
const PING_SAMPLES = 5 // the heartbeat assumed is the widest of the last few ping spacings
const HIDDEN_PAUSE_MS = 30_000 // a tab hidden this long closes its stream and stops polling
const ENDED_LINGER_MS = 120_000 // an ended match stays this long on the page before it is dropped

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
/** Named heartbeat (`heartbeat=1`), no id: proves the connection is alive (see the watchdog). */
const PING_TYPE = 'touchline.ping'
/** The node refused the stream; its `retry:` makes EventSource come back by itself (see onRefused). */
const REFUSED_TYPE = 'touchline.refused'
const END_TYPE = 'touchline.end'
const CONN_LABELS = { idle: 'waiting for matches', busy: 'server busy, retrying', paused: 'paused while hidden' }
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
let heartbeatMs = secondsParam('heartbeat', MIN_HEARTBEAT_MS, MAX_HEARTBEAT_MS) ?? HEARTBEAT_DEFAULT_MS
const pingSpacings = [] // ms between a ping and what was heard before it, last PING_SAMPLES
let lastHeardAt = 0 // performance.now() of the current stream's last sign of life (open, event, ping)
let quietAllowanceMs = 0 // silence allowed on top of the heartbeats (a refusal's wait)
let watchdogTimer = 0
let refusedSource = null // the EventSource just refused: it reconnects by itself after the wait
let selfReconnecting = null // that EventSource while it does: "live" only once it hears more than a refusal
let paused = false // hidden for HIDDEN_PAUSE_MS: no stream, no polling
let hiddenTimer = 0
let listTimer = 0
let listGeneration = 0 // bumped when polling stops or restarts: an older refresh chain ends
let listInterval = LIST_REFRESH_MS

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

/**
 * connecting | live | reconnecting | resumed | idle (no match to follow yet) | busy (refused, coming
 * back by itself) | paused (hidden long enough to let go of the stream)
 */
function setConn(state) {
  ui.conn.dataset.state = state
  ui.conn.textContent = CONN_LABELS[state] ?? state
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
  // Heartbeats as events the page can see (comments are invisible to EventSource), for the watchdog.
  params.set('heartbeat', '1')
  return `events?${params}`
}

function closeStream() {
  clearTimeout(reopenTimer)
  reopenTimer = 0
  clearTimeout(watchdogTimer)
  watchdogTimer = 0
  if (source) source.close()
  source = null
  refusedSource = null
  selfReconnecting = null
}

function openStream() {
  closeStream()
  if (paused) return
  if (matches.size === 0 || allEnded()) {
    setConn('idle')
    return
  }
  if (!hasOpened) setConn('connecting')
  const serial = ++connectionSerial
  nodeNamedByStream = false
  const es = new EventSource(streamUrl())
  source = es
  heard()
  armWatchdog()
  es.onopen = () => {
    heard()
    reopenAttempts = 0
    hasOpened = true
    // Back after a refusal: this answer may be one more refusal, so "busy" stays until more is heard.
    if (selfReconnecting !== es) setConn(disrupted ? 'resumed' : 'live')
    readClusterNode(serial)
  }
  es.onerror = () => {
    if (source !== es) return
    // A refusal's stream has ended: EventSource comes back by itself after the server's `retry:`.
    // A second error before it opens again is a failure like any other.
    if (refusedSource === es && es.readyState === EventSource.CONNECTING) {
      refusedSource = null
      selfReconnecting = es
      return
    }
    lostStream()
  }
  es.addEventListener(SNAPSHOT_TYPE, (e) => onSnapshot(e))
  es.addEventListener(HELLO_TYPE, (e) => onHello(e))
  es.addEventListener(PING_TYPE, () => onPing())
  es.addEventListener(REFUSED_TYPE, (e) => onRefused(es, e))
  es.addEventListener(END_TYPE, (e) => onMatchEnd(e))
  for (const type of MATCH_EVENT_TYPES) es.addEventListener(type, (e) => onMatchEvent(e))
}

/** The stream failed or went silent: re-open it with the last id, after a backoff. */
function lostStream() {
  closeStream()
  // Every match has ended: the node ended the stream, and a resume would only get 204.
  if (allEnded()) {
    setConn('idle')
    return
  }
  disrupted = true
  setConn('reconnecting')
  scheduleReopen()
}

// ---------- matches that end ----------

function allEnded() {
  for (const m of matches.values()) if (m.endedAt === undefined) return false
  return matches.size > 0
}

function endedLingerMs() {
  return secondsParam('endedLinger', 100, 86_400_000) ?? ENDED_LINGER_MS
}

/** Marks a match ended and drops it from the page after a while. */
function markEnded(m) {
  if (m.endedAt !== undefined) return
  m.endedAt = Date.now()
  m.row.dataset.ended = 'true'
  setTimeout(() => dropMatch(m.id), endedLingerMs())
}

function dropMatch(id) {
  const m = matches.get(id)
  if (!m) return
  m.row.remove()
  matches.delete(id)
  ui.count.textContent = String(matches.size)
  updateEmptyStates()
  // A stream still open carries the others on; a page left with none has nothing to stream.
  if (matches.size === 0) closeStream()
}

/** `touchline.end` (no id): the match's final event was sent, nothing more will come for it. */
function onMatchEnd(e) {
  admitted()
  const payload = parse(e)
  const m = payload && matches.get(payload.match)
  if (m) markEnded(m)
}

// ---------- the watchdog: a connection that died without closing ----------

/** Any sign of life on the current stream. */
function heard() {
  lastHeardAt = performance.now()
  quietAllowanceMs = 0
}

/** Something other than a refusal was heard: a stream that came back by itself after one is admitted. */
function admitted() {
  heard()
  if (selfReconnecting !== null && selfReconnecting === source) {
    selfReconnecting = null
    setConn(disrupted ? 'resumed' : 'live')
  }
}

function silenceLimitMs() {
  return MISSED_BEATS * heartbeatMs + quietAllowanceMs
}

/** Fires when the current silence would reach the limit; the check re-arms it if something was heard since. */
function armWatchdog() {
  clearTimeout(watchdogTimer)
  watchdogTimer = setTimeout(checkWatchdog, Math.max(0, lastHeardAt + silenceLimitMs() - performance.now()))
}

function checkWatchdog() {
  watchdogTimer = 0
  if (!source) return
  if (performance.now() - lastHeardAt < silenceLimitMs()) {
    armWatchdog()
    return
  }
  // Never a ping yet: perhaps the node's heartbeat is slower than assumed, so allow it more next time.
  if (pingSpacings.length === 0) setHeartbeat(Math.min(MAX_HEARTBEAT_MS, heartbeatMs * 2))
  lostStream()
}

/**
 * A node sends a ping after HEARTBEAT_MS without a write (checked a few times per interval), so the
 * time since the last thing heard is the interval, or a little more. The widest of the last few is
 * assumed: a ping delayed on the way makes the watchdog slower, never hastier.
 */
function onPing() {
  const spacing = performance.now() - lastHeardAt
  admitted()
  pingSpacings.push(Math.min(MAX_HEARTBEAT_MS, Math.max(MIN_HEARTBEAT_MS, spacing)))
  if (pingSpacings.length > PING_SAMPLES) pingSpacings.shift()
  const learned = Math.max(...pingSpacings)
  if (learned !== heartbeatMs) {
    setHeartbeat(learned)
    armWatchdog()
  }
}

function setHeartbeat(ms) {
  heartbeatMs = ms
  ui.conn.dataset.heartbeatMs = String(Math.round(ms))
}

/**
 * The node refused the stream (at capacity, draining, rate limit) and ends it after `retry:`. No error:
 * EventSource comes back by itself after that wait, perhaps through a balancer to another node.
 */
function onRefused(es, e) {
  if (source !== es) return
  heard()
  const payload = parse(e)
  const wait = payload && Number.isFinite(payload.retryAfterMs) && payload.retryAfterMs >= 0 ? payload.retryAfterMs : REOPEN_BASE_MS
  quietAllowanceMs = wait // the watchdog allows the wait on top of the heartbeats
  refusedSource = es
  setConn('busy')
}

/** Full-jitter exponential backoff: uniform in [0, min(cap, base·2^attempt)]. */
function scheduleReopen() {
  const ceiling = Math.min(REOPEN_MAX_MS, REOPEN_BASE_MS * 2 ** reopenAttempts)
  reopenAttempts++
  reopenTimer = setTimeout(openStream, Math.random() * ceiling)
}

/** A changed match set re-opens the stream, unless a reconnect is already due (it will use the new set). */
function restartStream() {
  if (reopenTimer === 0 && !paused) openStream()
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
  admitted()
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
  admitted()
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
  // Always revalidated, never stale: the listing's ETag makes an unchanged one a 304 without a body.
  const res = await fetch(path, { headers: { accept: 'application/json' }, cache: 'no-cache' })
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
  // Ended matches are not added (one already shown lingers, then is dropped: see markEnded).
  const keep = new Set()
  for (const entry of listed) {
    if (keep.size < MAX_MATCHES && typeof entry.match === 'string' && (entry.ended !== true || matches.has(entry.match))) keep.add(entry.match)
  }
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
      if (entry.ended === true) markEnded(m)
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

/** A duration in seconds from the page's query string (e.g. `?refresh=5`), in ms and clamped; undefined when absent. */
function secondsParam(name, minMs, maxMs) {
  const seconds = Number(new URLSearchParams(location.search).get(name))
  if (!Number.isFinite(seconds) || seconds <= 0) return undefined
  return Math.min(maxMs, Math.max(minMs, seconds * 1000))
}

function refreshInterval() {
  return secondsParam('refresh', MIN_REFRESH_S * 1000, MAX_REFRESH_S * 1000) ?? LIST_REFRESH_MS
}

function scheduleListRefresh(generation) {
  const delay = listInterval * (1 - LIST_REFRESH_JITTER / 2 + Math.random() * LIST_REFRESH_JITTER)
  listTimer = setTimeout(async () => {
    await refreshList()
    if (generation === listGeneration) scheduleListRefresh(generation)
  }, delay)
}

/** Loads the list until it loads, then refreshes it periodically (until polling stops: see pause()). */
async function loadList() {
  const generation = ++listGeneration
  // A node that is not ready yet answers 503: try again soon rather than after a whole refresh period,
  // when the server says (Retry-After, with a little jitter), else with exponential backoff.
  for (let attempt = 0; !(await refreshList()); attempt++) {
    if (generation !== listGeneration) return
    const wait =
      lastRetryAfterMs !== undefined
        ? lastRetryAfterMs * (1 + Math.random() * RETRY_AFTER_JITTER)
        : Math.random() * Math.min(listInterval, REOPEN_BASE_MS * 2 ** attempt)
    await new Promise((resolve) => setTimeout(resolve, Math.min(listInterval, wait)))
    if (generation !== listGeneration) return
  }
  if (generation === listGeneration) scheduleListRefresh(generation)
}

// ---------- a hidden tab lets go ----------

function onVisibilityChange() {
  if (document.visibilityState === 'hidden') {
    if (!paused && hiddenTimer === 0) hiddenTimer = setTimeout(pause, hiddenPauseMs())
    return
  }
  clearTimeout(hiddenTimer)
  hiddenTimer = 0
  if (paused) unpause()
}

function hiddenPauseMs() {
  return secondsParam('hiddenPause', 100, 3_600_000) ?? HIDDEN_PAUSE_MS
}

/** Hidden long enough: close the stream and stop polling (a refresh in flight ends its chain). */
function pause() {
  hiddenTimer = 0
  paused = true
  listGeneration++
  clearTimeout(listTimer)
  listTimer = 0
  closeStream()
  if (hasOpened) disrupted = true // back in view it says "resumed"
  setConn('paused')
}

/** Visible again: re-open with the last id at once (exact resume), and poll again. */
function unpause() {
  paused = false
  reopenAttempts = 0
  setConn('connecting')
  openStream()
  loadList()
}

async function start() {
  setConn('connecting')
  setHeartbeat(heartbeatMs)
  readClusterNode(connectionSerial)
  listInterval = refreshInterval()
  document.addEventListener('visibilitychange', onVisibilityChange)
  onVisibilityChange() // opened in a background tab
  await loadList()
  // Back online: do not sit out the rest of a long backoff.
  window.addEventListener('online', () => {
    if (reopenTimer !== 0) openStream()
  })
}

start()
