// Parley web client, built on the SDK (/sdk/parley.js). Plain DOM: every
// piece of user data reaches the page as text (textContent, text nodes),
// never as HTML.
import { ParleyApi, ParleyClient, Timeline } from '/sdk/parley.js';

const $ = (id) => document.getElementById(id);

/** Creates an element; string children become text nodes. */
function h(tag, attrs = {}, ...children) {
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
const PAGE = 50; // history page size
const POLL_MS = 15_000; // friends and rooms are refreshed this often (the server pushes neither)
const REACTIONS = ['👍', '❤️', '😂', '😮', '😢', '🎉'];

const api = new ParleyApi({
  session: JSON.parse(localStorage.getItem(SESSION_KEY) ?? 'null'),
  onSession: (s) => (s ? localStorage.setItem(SESSION_KEY, JSON.stringify(s)) : localStorage.removeItem(SESSION_KEY)),
});

let client = null; // ParleyClient of the logged-in user
let me = null; // the user's profile
let pollTimer = null;
const rooms = new Map(); // room id -> room state (see addRoom)
let current = null; // the open room
const msgEls = new Map(); // seq -> <li> of the open room
let social = { friends: [], incoming: [], outgoing: [] };
let context = null; // {type: 'reply' | 'edit', seq} of the composer

// --- profiles ---------------------------------------------------------------

const profiles = new Map(); // user id -> Promise<profile>

const displayName = (p) => p.displayName || p.handle;

function rememberProfile(p) {
  profiles.set(p.id, Promise.resolve(p));
}

function profile(id) {
  if (!profiles.has(id)) profiles.set(id, api.user(id).catch(() => ({ id, handle: id, displayName: '' })));
  return profiles.get(id);
}

/** A span that shows a user's name once known. */
function nameOf(id, cls = 'name') {
  const el = h('span', { class: cls });
  if (me && id === me.id) el.textContent = 'You';
  else profile(id).then((p) => { el.textContent = displayName(p); });
  return el;
}

// avatarColor picks one of a few hues from an id, so a user keeps a colour.
function avatarColor(id) {
  let n = 0;
  for (const c of id) n = (n * 31 + c.codePointAt(0)) >>> 0;
  return 'hue-' + (n % 8);
}

/** An avatar with the user's initial and, if known, a presence dot. */
function avatar(id, { presence = true } = {}) {
  const el = h('span', { class: 'avatar ' + avatarColor(id ?? '') });
  if (id) profile(id).then((p) => { el.prepend(displayName(p).slice(0, 1).toUpperCase()); });
  const p = presence && id && knownPresence(id);
  if (p) el.append(h('span', { class: 'dot ' + (p.online ? 'online' : 'offline'), title: p.online ? 'online' : 'offline' }));
  return el;
}

// Presence is shown only while connected: otherwise it may be stale.
const knownPresence = (id) => (client?.state === 'open' ? client.presence(id) : undefined);

// --- formatting -------------------------------------------------------------

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dateFmt = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });

function shortTime(ms) {
  if (!ms) return '';
  const d = new Date(ms);
  return d.toDateString() === new Date().toDateString() ? timeFmt.format(d) : dateFmt.format(d);
}

function lastSeen(ms) {
  if (!ms) return 'offline';
  const min = Math.round((Date.now() - ms) / 60_000);
  if (min < 1) return 'last seen just now';
  if (min < 60) return `last seen ${min} min ago`;
  return 'last seen ' + shortTime(ms);
}

/** What a log entry other than a message says, as nodes: for system lines and the room list. */
function describe(m) {
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
function toast(text) {
  const el = $('toast');
  el.textContent = text;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, 5000);
}

// report shows a failed action without breaking the page (after a log
// out, failures of what was in flight do not matter).
const report = (what) => (err) => api.session && toast(`${what}: ${err.message}`);

// --- log in -----------------------------------------------------------------

function showAuth(message = '') {
  $('main').hidden = true;
  $('auth').hidden = false;
  $('auth-error').textContent = message;
  $('auth-form').elements.handle.focus();
}

function setAuthMode(register) {
  $('tab-login').setAttribute('aria-selected', String(!register));
  $('tab-register').setAttribute('aria-selected', String(register));
  $('display-name-field').hidden = !register;
  $('auth-submit').textContent = register ? 'Create account' : 'Log in';
  $('auth-form').elements.password.autocomplete = register ? 'new-password' : 'current-password';
  $('auth-error').textContent = '';
}

const AUTH_ERRORS = {
  INVALID_CREDENTIALS: 'Wrong handle or password.',
  HANDLE_TAKEN: 'That handle is taken. Try another one.',
};

async function submitAuth(e) {
  e.preventDefault();
  const f = e.target.elements;
  const register = $('tab-register').getAttribute('aria-selected') === 'true';
  $('auth-submit').disabled = true;
  $('auth-error').textContent = '';
  try {
    const creds = { handle: f.handle.value.trim(), password: f.password.value };
    if (register) await api.register({ ...creds, displayName: f.display_name.value.trim() });
    else await api.login(creds);
    f.password.value = '';
    start();
  } catch (err) {
    $('auth-error').textContent = AUTH_ERRORS[err.code] ?? err.message;
  } finally {
    $('auth-submit').disabled = false;
  }
}

// --- session ----------------------------------------------------------------

function start() {
  me = api.session.user;
  rememberProfile(me);
  $('auth').hidden = true;
  $('main').hidden = false;
  $('me-name').textContent = displayName(me);
  $('me-handle').textContent = '@' + me.handle;
  $('me-avatar').replaceWith(Object.assign(avatar(me.id, { presence: false }), { id: 'me-avatar' }));

  client = new ParleyClient({ token: (o) => api.token(o) });
  client.on('state', onState);
  client.on('message', onMessage);
  client.on('pending', ({ room }) => room === current?.id && renderOutbox());
  client.on('sendFailed', ({ error }) => toast('Message not sent: ' + error.message));
  client.on('typing', ({ room }) => room === current?.id && renderTyping());
  client.on('presence', onPresence);
  client.on('read', onRead);
  client.on('unread', onUnread);
  client.on('roomOnline', ({ room, online }) => {
    const r = rooms.get(room);
    if (r) r.online = online;
    if (r === current) renderChatHeader();
  });
  client.on('roomError', ({ room }) => dropRoom(room));
  client.on('authFailed', () => signOut('Your session has ended. Please log in again.'));
  client.connect().catch(() => {}); // authFailed tells

  refreshFriends();
  pollTimer = setInterval(poll, POLL_MS);
}

async function signOut(message = '') {
  clearInterval(pollTimer);
  client?.close();
  client = null;
  await api.logout();
  rooms.clear();
  closeRoom();
  for (const id of ['rooms', 'friends', 'incoming', 'outgoing', 'search-results']) $(id).replaceChildren();
  $('auth-form').reset();
  setAuthMode(false);
  showAuth(message);
}

function poll() {
  if (document.visibilityState !== 'visible' || client?.state !== 'open') return;
  refreshRooms();
  refreshFriends();
}

function onState({ state }) {
  $('banner').hidden = state !== 'reconnecting';
  $('conn').className = 'conn ' + state;
  $('conn').title = state;
  // On every (re)connection the room list is read again: unread counts
  // and rooms may have changed meanwhile.
  if (state === 'open') refreshRooms();
  onPresence();
  if (!current) return;
  renderOutbox();
  if (state === 'open') settle(current); // history that failed to load meanwhile
}

// --- rooms ------------------------------------------------------------------

function addRoom({ room, kind, name }) {
  const r = {
    id: room, kind, name,
    head: 0, read: 0, // log head, read cursor
    preview: new Timeline(), // the latest entries, folded: the room list shows the newest item
    previewFilled: false, added: Date.now(),
    peer: null, // the other member of a direct room
    members: null, reads: new Map(), online: 0, // loaded when opened
    timeline: null, hasMore: true, loading: false,
  };
  rooms.set(room, r);
  if (kind === 'direct') {
    api.members(room, { limit: 2 }).then(({ members }) => {
      r.peer = members.find((m) => m.user !== me.id)?.user ?? me.id;
      renderRooms();
      if (r === current) renderChatHeader();
    }, report('Loading a chat'));
  }
  return r;
}

function dropRoom(id) {
  rooms.delete(id);
  client?.unsubscribe(id);
  if (current?.id === id) closeRoom();
  renderRooms();
}

async function refreshRooms() {
  let list;
  try {
    list = await client.syncAll();
  } catch (err) {
    return report('Loading chats')(err);
  }
  // Rooms the user leaves go away with their member_left event, not here:
  // the room index may lag behind a room just made.
  for (const s of list) {
    let r = rooms.get(s.room);
    if (!r) {
      r = addRoom(s);
      client.subscribe(s.room, { afterSeq: s.headSeq }).catch(report('Following a chat'));
    }
    r.name = s.name;
    r.head = Math.max(r.head, s.headSeq);
    r.read = Math.max(r.read, s.readSeq);
    if (s.lastMessage) addPreview(r, [s.lastMessage]);
  }
  renderRooms();
  openFromHash();
}

/** Opens the one-to-one chat with a user, creating it if need be. */
async function openDirect(user) {
  try {
    const room = await api.direct(user);
    await ensureRoom(room);
    location.hash = room.id;
    selectTab(false);
  } catch (err) {
    report('Opening the chat')(err);
  }
}

// ensureRoom adds and follows a room the user just made or found.
async function ensureRoom(room) {
  if (rooms.has(room.id)) return;
  const r = addRoom({ room: room.id, kind: room.kind, name: room.name });
  const { headSeq } = await client.subscribe(room.id);
  r.head = Math.max(r.head, headSeq); // read stays 0 until the user sees it
  renderRooms();
}

const unread = (r) => Math.max(0, r.head - r.read);

// lastItem is what the room list shows of a room: its newest message or
// membership line that is not deleted, edits applied (never "X edited: …").
function lastItem(r) {
  const seqs = r.preview.seqs();
  for (let i = seqs.length - 1; i >= 0; i--) {
    const m = r.preview.get(seqs[i]);
    if (!m.deleted) return m;
  }
  return null;
}

// addPreview folds entries into the room's preview. When the newest entry
// is an edit, delete or reaction the message it names may be older than
// what the app has: one page of history before it fills that in.
function addPreview(r, entries) {
  r.preview.add(entries);
  if (r.previewFilled || (lastItem(r)?.seq ?? 0) >= r.preview.newest) return;
  r.previewFilled = true;
  client.history(r.id, { beforeSeq: r.preview.newest + 1, limit: 20 }).then((page) => {
    r.preview.add(page.messages);
    renderRooms();
  }, () => { r.previewFilled = false; });
}

function previewText(r) {
  const m = lastItem(r);
  if (!m) return 'No messages yet';
  if (m.kind !== 'text') return describe(m);
  return [nameOf(m.sender), ': ', m.text];
}

const lastActive = (r) => lastItem(r)?.sentAt ?? r.added;

function roomAvatar(r) {
  if (r.kind === 'direct') return avatar(r.peer);
  return h('span', { class: 'avatar group ' + avatarColor(r.id) }, (r.name || '#').slice(0, 1).toUpperCase());
}

function roomTitle(r) {
  return r.kind === 'direct' ? (r.peer ? nameOf(r.peer) : h('span', {}, 'Direct chat')) : h('span', {}, r.name || 'Unnamed group');
}

function renderRooms() {
  const sorted = [...rooms.values()].sort((a, b) => lastActive(b) - lastActive(a));
  $('rooms').replaceChildren(...sorted.map((r) => {
    const n = unread(r);
    return h('li', {},
      h('button', { type: 'button', class: 'room' + (r === current ? ' active' : ''), 'data-room': r.id, 'aria-current': r === current ? 'true' : undefined, onclick: () => { location.hash = r.id; } },
        roomAvatar(r),
        h('span', { class: 'room-main' },
          h('span', { class: 'room-top' }, roomTitle(r), h('time', {}, shortTime(lastItem(r)?.sentAt))),
          h('span', { class: 'room-bottom' },
            h('span', { class: 'preview' }, previewText(r)),
            n ? h('span', { class: 'badge', 'aria-label': `${n} unread` }, String(n)) : null))));
  }));
  $('rooms-empty').hidden = rooms.size > 0;
  $('rooms').querySelector('.active')?.scrollIntoView({ block: 'nearest' });
  const total = [...rooms.values()].reduce((sum, r) => sum + unread(r), 0);
  document.title = total ? `(${total}) Parley` : 'Parley';
}

// --- live events ------------------------------------------------------------

function onMessage(m) {
  const r = rooms.get(m.room);
  if (!r) return;
  r.head = Math.max(r.head, m.seq);
  addPreview(r, [m]);
  if (m.kind === 'room_renamed') r.name = m.text;
  if ((m.kind === 'member_left' || m.kind === 'member_removed') && m.targetUsers.includes(me.id)) return dropRoom(r.id);
  if (r.timeline) {
    const changed = r.timeline.add([m]);
    if (r === current) renderMessages(changed);
  }
  if (r === current) markRead();
  renderRooms();
}

function onPresence() {
  renderRooms();
  renderFriends();
  if (current) renderChatHeader();
}

function onRead({ room, user, seq }) {
  const r = rooms.get(room);
  if (!r) return;
  r.reads.set(user, Math.max(r.reads.get(user) ?? 0, seq));
  if (r === current) renderTicks();
}

// The user's other devices read something.
function onUnread({ room, headSeq, readSeq }) {
  const r = rooms.get(room);
  if (!r) return;
  r.head = Math.max(r.head, headSeq);
  r.read = Math.max(r.read, readSeq);
  renderRooms();
}

// --- the open room ----------------------------------------------------------

function openFromHash() {
  const id = decodeURIComponent(location.hash.slice(1));
  if (!id) return closeRoom();
  if (id !== current?.id && rooms.has(id)) openRoom(rooms.get(id));
}

function openRoom(r) {
  if (current) client.typing(current.id, false);
  current = r;
  context = null;
  $('main').classList.add('chat-open');
  for (const id of ['chat-header', 'scroller', 'composer']) $(id).hidden = false;
  $('chat-empty').hidden = true;
  $('input').value = '';
  renderContext();
  renderChatHeader();
  renderRooms();
  msgEls.clear();
  $('messages').replaceChildren();
  pinned = true;
  renderTyping();
  renderOutbox();
  if (!r.timeline) {
    r.timeline = new Timeline();
    loadOlder(r);
  } else {
    renderMessages(new Set(r.timeline.seqs()));
    scrollToBottom();
    settle(r);
  }
  if (!r.members) loadMembers(r);
  if (matchMedia('(min-width: 721px)').matches) $('input').focus();
}

function closeRoom() {
  if (current && client) client.typing(current.id, false);
  current = null;
  $('main').classList.remove('chat-open');
  for (const id of ['chat-header', 'scroller', 'composer']) $(id).hidden = true;
  $('chat-empty').hidden = false;
  $('typing').textContent = '';
  if (location.hash) history.replaceState(null, '', location.pathname);
  renderRooms();
}

async function loadMembers(r) {
  try {
    const [{ members }, { reads }] = await Promise.all([api.members(r.id, { limit: 100 }), api.reads(r.id, { limit: 100 })]);
    r.members = members.map((m) => m.user);
    for (const { user, seq } of reads) r.reads.set(user, Math.max(r.reads.get(user) ?? 0, seq));
    if (r === current) {
      renderChatHeader();
      renderTicks();
    }
  } catch (err) {
    report('Loading members')(err);
  }
}

function renderChatHeader() {
  const r = current;
  $('chat-name').replaceChildren(roomTitle(r));
  $('chat-avatar').replaceWith(Object.assign(roomAvatar(r), { id: 'chat-avatar' }));
  let status = '';
  if (r.kind === 'direct') {
    const p = r.peer && knownPresence(r.peer);
    status = p ? (p.online ? 'online' : lastSeen(p.lastSeen)) : '';
  } else if (r.members) {
    status = `${r.members.length} members` + (r.online ? `, ${r.online} online` : '');
  }
  $('chat-status').textContent = status;
}

function renderTyping() {
  const names = client.typingUsers(current.id).map((u) => nameOf(u));
  const line = $('typing');
  if (!names.length) return line.replaceChildren();
  if (names.length > 2) return line.replaceChildren('Several people are typing…');
  line.replaceChildren(...(names.length === 2 ? [names[0], ' and ', names[1], ' are typing…'] : [names[0], ' is typing…']));
}

const scroller = () => $('scroller');
const atBottom = () => scroller().scrollHeight - scroller().scrollTop - scroller().clientHeight < 60;
// pinned: the chat follows its newest message. It is set when a chat opens
// or the user sends, and follows the user's scrolling; while pinned, any
// change of size (a page of history, names and reactions filling in, the
// composer growing, a phone's keyboard) scrolls to the bottom again.
let pinned = false;
const scrollToBottom = () => {
  pinned = true;
  scroller().scrollTop = scroller().scrollHeight;
};
const keepPinned = new ResizeObserver(() => { if (pinned && current) scroller().scrollTop = scroller().scrollHeight; });
for (const id of ['scroller', 'messages', 'outbox']) keepPinned.observe($(id));

// loadOlder reads the page before the oldest loaded entry, keeping the
// view where it is.
async function loadOlder(r) {
  if (r.loading || !r.hasMore) return;
  r.loading = true;
  $('history-state').textContent = 'Loading…';
  try {
    const page = await client.history(r.id, { beforeSeq: r.timeline.oldest || undefined, limit: PAGE });
    r.hasMore = page.hasMore;
    const changed = r.timeline.add(page.messages);
    if (r === current && pinned) renderMessages(changed);
    else if (r === current) {
      const fromBottom = scroller().scrollHeight - scroller().scrollTop;
      renderMessages(changed);
      scroller().scrollTop = scroller().scrollHeight - fromBottom;
    }
  } catch (err) {
    if (r === current) $('history-state').textContent = 'Could not load messages.';
    return report('Loading messages')(err);
  } finally {
    r.loading = false;
  }
  if (r === current) settle(r);
}

// settle pages back until the list fills the screen, then marks read.
function settle(r) {
  renderBeginning(r);
  if (r.hasMore && scroller().scrollHeight <= scroller().clientHeight) loadOlder(r);
  else markRead();
}

// renderBeginning says, above the oldest message, that the conversation
// starts there; for a group, who created it (the log starts after that).
function renderBeginning(r) {
  const el = $('history-state');
  if (r.hasMore) return el.replaceChildren();
  if (r.kind === 'direct') return el.replaceChildren('This is the beginning of the conversation.');
  r.info ??= api.room(r.id).catch(() => null);
  r.info.then((info) => {
    if (info && r === current && !r.hasMore) el.replaceChildren(h('span', { class: 'system' }, nameOf(info.createdBy), ' created the group'));
  });
}

// markRead moves the read cursor to the newest message once the user can
// see it: the page is visible and the list scrolled to the bottom.
function markRead() {
  const r = current;
  if (!r || document.visibilityState !== 'visible' || !atBottom() || r.read >= r.head) return;
  r.read = r.head;
  client.markRead(r.id, r.head).catch(() => {}); // marked again on the next message
  renderRooms();
}

// --- messages ---------------------------------------------------------------

/** Renders (or re-renders) items of the open room, and replies quoting them. */
function renderMessages(changed) {
  if (!changed.size) return;
  const tl = current.timeline;
  for (const seq of msgEls.keys()) {
    if (changed.has(tl.get(seq)?.replyToSeq)) changed.add(seq);
  }
  for (const seq of [...changed].sort((a, b) => a - b)) {
    const el = messageEl(tl.get(seq));
    const old = msgEls.get(seq);
    msgEls.set(seq, el);
    if (old) {
      old.replaceWith(el);
      continue;
    }
    const next = [...$('messages').children].find((li) => Number(li.dataset.seq) > seq);
    $('messages').insertBefore(el, next ?? null);
  }
  if (pinned) scrollToBottom();
}

function messageEl(m) {
  if (m.kind !== 'text') return h('li', { class: 'system', 'data-seq': m.seq }, describe(m));
  const mine = m.sender === me.id;
  const li = h('li', { class: 'msg' + (mine ? ' mine' : '') + (m.deleted ? ' deleted' : ''), 'data-seq': m.seq });
  const bubble = h('div', { class: 'bubble', onclick: () => li.classList.toggle('selected') });
  if (!mine && current.kind !== 'direct') bubble.append(nameOf(m.sender, 'sender'));
  if (m.replyToSeq) bubble.append(quoteEl(m.replyToSeq));
  bubble.append(h('p', { class: 'text' }, m.deleted ? 'This message was deleted.' : linkify(m.text)));
  bubble.append(h('span', { class: 'meta' },
    m.edited && !m.deleted ? h('span', { class: 'edited' }, 'edited') : null,
    h('time', { datetime: new Date(m.sentAt).toISOString() }, shortTime(m.sentAt)),
    mine && !m.deleted ? h('span', { class: 'tick' }) : null));
  li.append(bubble);
  if (m.deleted) return li;
  if (m.reactions.length) {
    li.append(h('div', { class: 'reactions' }, m.reactions.map(({ emoji, users }) => {
      const reacted = users.includes(me.id);
      return h('button', { type: 'button', class: 'reaction' + (reacted ? ' mine' : ''), title: `${users.length} reacted`, onclick: () => react(m.seq, emoji, !reacted) },
        emoji, h('span', {}, String(users.length)));
    })));
  }
  const picker = h('div', { class: 'picker', hidden: true },
    REACTIONS.map((e) => h('button', { type: 'button', 'aria-label': 'React ' + e, onclick: () => react(m.seq, e, true) }, e)));
  li.append(h('div', { class: 'actions' },
    h('button', { type: 'button', onclick: () => setContext({ type: 'reply', seq: m.seq }) }, 'Reply'),
    h('button', { type: 'button', onclick: () => { picker.hidden = !picker.hidden; } }, 'React'),
    mine ? h('button', { type: 'button', onclick: () => setContext({ type: 'edit', seq: m.seq }) }, 'Edit') : null,
    mine ? h('button', { type: 'button', onclick: () => deleteMessage(m) }, 'Delete') : null),
  picker);
  updateTick(li, m.seq);
  return li;
}

// linkify turns the http(s) URLs of a text into links, as DOM nodes: the
// rest stays text. Trailing punctuation ends a URL ("see https://x.org.").
// A ")" ends it unless the URL opened one (https://en.wikipedia.org/wiki/X_(y)).
function trimURL(s) {
  const count = (c) => s.split(c).length - 1;
  s = s.replace(/[.,;:!?'"]+$/, '');
  while (s.endsWith(')') && count(')') > count('(')) s = s.slice(0, -1).replace(/[.,;:!?'"]+$/, '');
  return s;
}

const URL_RE = /\bhttps?:\/\/[^\s<>"'`]+/gi;
function linkify(text) {
  const out = [];
  let at = 0;
  for (const match of text.matchAll(URL_RE)) {
    const raw = trimURL(match[0]);
    let url;
    try {
      url = new URL(raw);
    } catch {
      continue;
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') continue;
    out.push(text.slice(at, match.index), h('a', { href: url.href, target: '_blank', rel: 'noopener noreferrer' }, raw));
    at = match.index + raw.length;
  }
  out.push(text.slice(at));
  return out.filter((x) => x !== '');
}

function deleteMessage(m) {
  if (!confirm(`Delete this message for everyone?\n\n“${m.text.slice(0, 200)}”`)) return;
  client.delete(current.id, m.seq).catch(() => {});
}

function quoteEl(seq) {
  const target = current.timeline.get(seq);
  if (!target) return h('blockquote', { class: 'quote' }, 'an earlier message');
  return h('blockquote', { class: 'quote', onclick: (e) => { e.stopPropagation(); msgEls.get(seq)?.scrollIntoView({ block: 'center' }); } },
    nameOf(target.sender, 'sender'), h('span', {}, target.deleted ? 'deleted message' : target.text));
}

function react(seq, emoji, add) {
  client.react(current.id, seq, emoji, add).catch(() => {});
}

// A message of the user's is read once every other member has read it;
// other items have no tick.
function updateTick(li, seq) {
  const others = (current.members ?? []).filter((u) => u !== me.id);
  const read = others.length > 0 && others.every((u) => (current.reads.get(u) ?? 0) >= seq);
  const tick = li.querySelector('.tick');
  if (!tick) return;
  tick.textContent = read ? '✓✓' : '✓';
  tick.className = 'tick' + (read ? ' read' : '');
  tick.title = read ? 'Read' : 'Sent';
}

function renderTicks() {
  for (const [seq, li] of msgEls) updateTick(li, seq);
}

// The outbox shows the user's messages not yet acknowledged.
function renderOutbox() {
  const waiting = client.state === 'open' ? 'Sending…' : 'Waiting for connection…';
  $('outbox').replaceChildren(...client.pending(current.id).filter((p) => p.kind === 'text').map((p) =>
    h('li', { class: 'msg mine pending' },
      h('div', { class: 'bubble' }, h('p', { class: 'text' }, p.text), h('span', { class: 'meta' }, waiting)))));
  if (pinned) scrollToBottom();
}

// --- composer ---------------------------------------------------------------

function setContext(c) {
  if (context?.type === 'edit' && c?.type !== 'edit') $('input').value = '';
  context = c;
  renderContext();
  if (c?.type === 'edit') $('input').value = current.timeline.get(c.seq).text;
  $('input').focus();
}

function renderContext() {
  $('context').hidden = !context;
  if (!context) return;
  const m = current.timeline.get(context.seq);
  $('context-text').replaceChildren(...(context.type === 'edit'
    ? ['Editing your message']
    : ['Replying to ', nameOf(m.sender), ': ', m.text.slice(0, 80)]));
}

function submitMessage(e) {
  e.preventDefault();
  const text = $('input').value.trim();
  if (!text || !current) return;
  const room = current.id;
  const sent = context?.type === 'edit'
    ? client.edit(room, context.seq, text)
    : client.send(room, text, { replyToSeq: context?.type === 'reply' ? context.seq : undefined });
  sent.catch(() => {}); // sendFailed tells
  client.typing(room, false);
  $('input').value = '';
  setContext(null);
  scrollToBottom();
}

// --- friends ----------------------------------------------------------------

async function refreshFriends() {
  try {
    const [f, inc, out] = await Promise.all([
      api.friends({ limit: 100 }), api.incomingRequests({ limit: 100 }), api.outgoingRequests({ limit: 100 }),
    ]);
    social = { friends: f.friends, incoming: inc.requests, outgoing: out.requests };
  } catch (err) {
    return report('Loading friends')(err);
  }
  for (const { user } of [...social.friends, ...social.incoming, ...social.outgoing]) rememberProfile(user);
  renderFriends();
  renderSearch();
}

// act runs a friends action, then reads the lists again.
const act = (what, fn) => () => fn().then(refreshFriends, report(what));

function personEl(p, ...buttons) {
  return h('li', { class: 'person', 'data-user': p.id },
    avatar(p.id),
    h('span', { class: 'names' }, h('strong', {}, displayName(p)), h('small', {}, '@' + p.handle)),
    h('span', { class: 'buttons' }, buttons));
}

function renderFriends() {
  const button = (label, onclick, cls = 'ghost', aria) => h('button', { type: 'button', class: cls, onclick, 'aria-label': aria, title: aria }, label);
  $('incoming').replaceChildren(...social.incoming.map(({ user: p }) => personEl(p,
    button('Accept', act('Accepting', () => api.acceptFriend(p.id)), 'primary'),
    button('Decline', act('Declining', () => api.declineFriend(p.id))))));
  $('outgoing').replaceChildren(...social.outgoing.map(({ user: p }) => personEl(p,
    button('Cancel', act('Cancelling', () => api.cancelFriendRequest(p.id))))));
  $('friends').replaceChildren(...social.friends.map(({ user: p }) => personEl(p,
    button('Message', () => openDirect(p.id), 'primary'),
    button('✕', () => confirm(`Remove ${displayName(p)} (@${p.handle}) from your friends?`) && act('Removing', () => api.removeFriend(p.id))(),
      'ghost icon-small', 'Remove friend'))));
  $('incoming-title').hidden = !social.incoming.length;
  $('outgoing-title').hidden = !social.outgoing.length;
  $('friends-empty').hidden = social.friends.length > 0;
  $('requests-badge').hidden = !social.incoming.length;
  $('requests-badge').textContent = String(social.incoming.length);
  renderGroupMembers();
}

let searchTimer = null;
let searchResults = [];

function onSearch() {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(async () => {
    const prefix = $('search').value.trim().toLowerCase();
    searchResults = [];
    if (/^[a-z0-9_.]{3,32}$/.test(prefix)) {
      try {
        searchResults = (await api.findUsers(prefix, { limit: 20 })).users.filter((p) => p.id !== me.id);
      } catch (err) {
        report('Searching')(err);
      }
    }
    renderSearch();
  }, 250);
}

function renderSearch() {
  const query = $('search').value.trim();
  const hint = $('search-hint');
  hint.hidden = !query || (query.length >= 3 && searchResults.length > 0);
  hint.textContent = query.length < 3 ? 'Type at least 3 characters of a handle.' : 'Nobody found.';
  const has = (list, p) => list.some((e) => e.user.id === p.id);
  $('search-results').replaceChildren(...searchResults.map((p) => {
    rememberProfile(p);
    if (has(social.friends, p)) return personEl(p, h('button', { type: 'button', class: 'primary', onclick: () => openDirect(p.id) }, 'Message'));
    if (has(social.outgoing, p)) return personEl(p, h('button', { type: 'button', class: 'ghost', disabled: true }, 'Requested'));
    if (has(social.incoming, p)) return personEl(p, h('button', { type: 'button', class: 'primary', onclick: act('Accepting', () => api.acceptFriend(p.id)) }, 'Accept'));
    return personEl(p, h('button', { type: 'button', class: 'primary', onclick: act('Sending the request', () => api.requestFriend(p.id)) }, 'Add friend'));
  }));
}

// --- groups -----------------------------------------------------------------

function renderGroupMembers() {
  $('group-members').replaceChildren(h('legend', {}, 'Add friends'), ...social.friends.map(({ user: p }) =>
    h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'member', value: p.id }), displayName(p))));
}

async function createGroup(e) {
  e.preventDefault();
  const f = e.target;
  const members = [...f.querySelectorAll('input[name=member]:checked')].map((c) => c.value);
  try {
    const room = await api.createRoom({ name: f.elements.name.value.trim(), members });
    f.reset();
    f.hidden = true;
    await ensureRoom(room);
    location.hash = room.id;
  } catch (err) {
    report('Creating the group')(err);
  }
}

// --- wiring -----------------------------------------------------------------

function selectTab(friends) {
  $('tab-chats').setAttribute('aria-selected', String(!friends));
  $('tab-friends').setAttribute('aria-selected', String(friends));
  $('panel-chats').hidden = friends;
  $('panel-friends').hidden = !friends;
  if (friends) refreshFriends();
}

$('tab-login').addEventListener('click', () => setAuthMode(false));
$('tab-register').addEventListener('click', () => setAuthMode(true));
$('auth-form').addEventListener('submit', submitAuth);
$('logout').addEventListener('click', () => signOut());
$('tab-chats').addEventListener('click', () => selectTab(false));
$('tab-friends').addEventListener('click', () => selectTab(true));
$('search').addEventListener('input', onSearch);
$('new-group').addEventListener('click', () => { $('group-form').hidden = false; $('group-form').elements.name.focus(); });
$('group-cancel').addEventListener('click', () => { $('group-form').hidden = true; });
$('group-form').addEventListener('submit', createGroup);
$('back').addEventListener('click', () => { location.hash = ''; });
$('context-cancel').addEventListener('click', () => setContext(null));
$('composer').addEventListener('submit', submitMessage);
$('input').addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) submitMessage(e);
});
$('input').addEventListener('input', () => current && client.typing(current.id, $('input').value.trim() !== ''));
$('scroller').addEventListener('scroll', () => {
  if (!current) return;
  pinned = atBottom();
  if (scroller().scrollTop < 80) loadOlder(current);
  markRead();
});
window.addEventListener('hashchange', openFromHash);
document.addEventListener('keydown', (e) => {
  if (e.key !== 'Escape' || !current) return;
  if (context) setContext(null);
  else location.hash = '';
});
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState !== 'visible') return;
  markRead();
  poll();
});

if (api.session) start();
else showAuth();
