// Parley web client: what its modules share. DOM helpers, the API client
// and the session, profiles, and formatting. Plain DOM: every piece of user
// data reaches the page as text (textContent, text nodes), never as HTML.
import { ParleyApi } from '/sdk/parley.js';

export const $ = (id) => document.getElementById(id);

/** Creates an element; string children become text nodes. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  el.append(...children.flat().filter((c) => c !== undefined && c !== null && c !== false));
  return el;
}

const SESSION_KEY = 'parley.session';

export const api = new ParleyApi({
  session: JSON.parse(localStorage.getItem(SESSION_KEY) ?? 'null'),
  onSession: (s) => (s ? localStorage.setItem(SESSION_KEY, JSON.stringify(s)) : localStorage.removeItem(SESSION_KEY)),
});

/** What the modules share: the logged-in user's client and profile, and the open room. */
export const state = {
  client: null, // ParleyClient of the logged-in user
  me: null, // the user's profile
  current: null, // the open room
};
export const rooms = new Map(); // room id -> room state (see addRoom)

// --- profiles ---------------------------------------------------------------

const profiles = new Map(); // user id -> Promise<profile>

export const displayName = (p) => p.displayName || p.handle;

export function rememberProfile(p) {
  profiles.set(p.id, Promise.resolve(p));
}

function profile(id) {
  if (!profiles.has(id)) profiles.set(id, api.user(id).catch(() => ({ id, handle: id, displayName: '' })));
  return profiles.get(id);
}

/** A span that shows a user's name once known. */
export function nameOf(id, cls = 'name') {
  const el = h('span', { class: cls });
  if (state.me && id === state.me.id) el.textContent = 'You';
  else profile(id).then((p) => { el.textContent = displayName(p); });
  return el;
}

// avatarColor picks one of a few hues from an id, so a user keeps a colour.
export function avatarColor(id) {
  let n = 0;
  for (const c of id) n = (n * 31 + c.codePointAt(0)) >>> 0;
  return 'hue-' + (n % 8);
}

/** An avatar with the user's initial and, if known, a presence dot. */
export function avatar(id, { presence = true } = {}) {
  const el = h('span', { class: 'avatar ' + avatarColor(id ?? '') });
  if (id) profile(id).then((p) => { el.prepend(displayName(p).slice(0, 1).toUpperCase()); });
  const p = presence && id && knownPresence(id);
  if (p) el.append(h('span', { class: 'dot ' + (p.online ? 'online' : 'offline'), title: p.online ? 'online' : 'offline' }));
  return el;
}

// Presence is shown only while connected: otherwise it may be stale.
export const knownPresence = (id) => (state.client?.state === 'open' ? state.client.presence(id) : undefined);

// --- formatting -------------------------------------------------------------

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dateFmt = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });

export function shortTime(ms) {
  if (!ms) return '';
  const d = new Date(ms);
  return d.toDateString() === new Date().toDateString() ? timeFmt.format(d) : dateFmt.format(d);
}

export function lastSeen(ms) {
  if (!ms) return 'offline';
  const min = Math.round((Date.now() - ms) / 60_000);
  if (min < 1) return 'last seen just now';
  if (min < 60) return `last seen ${min} min ago`;
  return 'last seen ' + shortTime(ms);
}

/** What a log entry other than a message says, as nodes: for system lines and the room list. */
export function describe(m) {
  const who = nameOf(m.sender);
  const targets = () => m.targetUsers.flatMap((u, i) => (i ? [', ', nameOf(u)] : [nameOf(u)]));
  switch (m.kind) {
    case 'edit': return [who, ' edited: ', m.text];
    case 'delete': return [who, ' deleted a message'];
    case 'reaction_add': return [who, ' reacted ', m.reaction];
    case 'reaction_remove': return [who, ' removed a reaction'];
    case 'member_joined': return m.targetUsers.includes(m.sender) ? [who, ' joined'] : [who, ' added ', ...targets()];
    case 'member_left': return [who, ' left'];
    case 'member_removed': return [who, ' removed ', ...targets()];
    case 'member_role_changed': return [who, ' made ', ...targets(), ' ' + m.role];
    case 'room_renamed': return [who, ' renamed the group to “', m.text, '”'];
    default: return [who, ' did something new'];
  }
}

let toastTimer = null;
export function toast(text) {
  const el = $('toast');
  el.textContent = text;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, 5000);
}

// report shows a failed action without breaking the page (after a log
// out, failures of what was in flight do not matter).
export const report = (what) => (err) => api.session && toast(`${what}: ${err.message}`);
