// The open chat: its history and live messages, receipts, typing, and the
// composer. The view stays pinned to the newest message until the user
// scrolls up.
import { Timeline } from '/sdk/parley.js';
import { $, api, describe, h, knownPresence, lastSeen, nameOf, report, rooms, shortTime, state } from './ui.js';
import { renderRooms, roomAvatar, roomTitle } from './rooms.js';

const PAGE = 50; // history page size
const REACTIONS = ['👍', '❤️', '😂', '😮', '😢', '🎉'];
const msgEls = new Map(); // seq -> <li> of the open room
let context = null; // {type: 'reply' | 'edit', seq} of the composer

// --- the open room ----------------------------------------------------------

export function openFromHash() {
  const id = decodeURIComponent(location.hash.slice(1));
  if (!id) return closeRoom();
  if (id !== state.current?.id && rooms.has(id)) openRoom(rooms.get(id));
}

function openRoom(r) {
  if (state.current) state.client.typing(state.current.id, false);
  state.current = r;
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

export function closeRoom() {
  if (state.current && state.client) state.client.typing(state.current.id, false);
  state.current = null;
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
    if (r === state.current) {
      renderChatHeader();
      renderTicks();
    }
  } catch (err) {
    report('Loading members')(err);
  }
}

export function renderChatHeader() {
  const r = state.current;
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

export function renderTyping() {
  const names = state.client.typingUsers(state.current.id).map((u) => nameOf(u));
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
const keepPinned = new ResizeObserver(() => { if (pinned && state.current) scroller().scrollTop = scroller().scrollHeight; });
for (const id of ['scroller', 'messages', 'outbox']) keepPinned.observe($(id));

// loadOlder reads the page before the oldest loaded entry, keeping the
// view where it is.
async function loadOlder(r) {
  if (r.loading || !r.hasMore) return;
  r.loading = true;
  $('history-state').textContent = 'Loading…';
  try {
    const page = await state.client.history(r.id, { beforeSeq: r.timeline.oldest || undefined, limit: PAGE });
    r.hasMore = page.hasMore;
    const changed = r.timeline.add(page.messages);
    if (r === state.current && pinned) renderMessages(changed);
    else if (r === state.current) {
      const fromBottom = scroller().scrollHeight - scroller().scrollTop;
      renderMessages(changed);
      scroller().scrollTop = scroller().scrollHeight - fromBottom;
    }
  } catch (err) {
    if (r === state.current) $('history-state').textContent = 'Could not load messages.';
    return report('Loading messages')(err);
  } finally {
    r.loading = false;
  }
  if (r === state.current) settle(r);
}

// settle pages back until the list fills the screen, then marks read.
export function settle(r) {
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
    if (info && r === state.current && !r.hasMore) el.replaceChildren(h('span', { class: 'system' }, nameOf(info.createdBy), ' created the group'));
  });
}

// markRead moves the read cursor to the newest message once the user can
// see it: the page is visible and the list scrolled to the bottom.
export function markRead() {
  const r = state.current;
  if (!r || document.visibilityState !== 'visible' || !atBottom() || r.read >= r.head) return;
  r.read = r.head;
  state.client.markRead(r.id, r.head).catch(() => {}); // marked again on the next message
  renderRooms();
}

// --- messages ---------------------------------------------------------------

/** Renders (or re-renders) items of the open room, and replies quoting them. */
export function renderMessages(changed) {
  if (!changed.size) return;
  const tl = state.current.timeline;
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
  const mine = m.sender === state.me.id;
  const li = h('li', { class: 'msg' + (mine ? ' mine' : '') + (m.deleted ? ' deleted' : ''), 'data-seq': m.seq });
  const bubble = h('div', { class: 'bubble', onclick: () => li.classList.toggle('selected') });
  if (!mine && state.current.kind !== 'direct') bubble.append(nameOf(m.sender, 'sender'));
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
      const reacted = users.includes(state.me.id);
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
  state.client.delete(state.current.id, m.seq).catch(() => {});
}

function quoteEl(seq) {
  const target = state.current.timeline.get(seq);
  if (!target) return h('blockquote', { class: 'quote' }, 'an earlier message');
  return h('blockquote', { class: 'quote', onclick: (e) => { e.stopPropagation(); msgEls.get(seq)?.scrollIntoView({ block: 'center' }); } },
    nameOf(target.sender, 'sender'), h('span', {}, target.deleted ? 'deleted message' : target.text));
}

function react(seq, emoji, add) {
  state.client.react(state.current.id, seq, emoji, add).catch(() => {});
}

// A message of the user's is read once every other member has read it;
// other items have no tick.
function updateTick(li, seq) {
  const others = (state.current.members ?? []).filter((u) => u !== state.me.id);
  const read = others.length > 0 && others.every((u) => (state.current.reads.get(u) ?? 0) >= seq);
  const tick = li.querySelector('.tick');
  if (!tick) return;
  tick.textContent = read ? '✓✓' : '✓';
  tick.className = 'tick' + (read ? ' read' : '');
  tick.title = read ? 'Read' : 'Sent';
}

export function renderTicks() {
  for (const [seq, li] of msgEls) updateTick(li, seq);
}

// The outbox shows the user's messages not yet acknowledged.
export function renderOutbox() {
  const waiting = state.client.state === 'open' ? 'Sending…' : 'Waiting for connection…';
  $('outbox').replaceChildren(...state.client.pending(state.current.id).filter((p) => p.kind === 'text').map((p) =>
    h('li', { class: 'msg mine pending' },
      h('div', { class: 'bubble' }, h('p', { class: 'text' }, p.text), h('span', { class: 'meta' }, waiting)))));
  if (pinned) scrollToBottom();
}

// --- composer ---------------------------------------------------------------

function setContext(c) {
  if (context?.type === 'edit' && c?.type !== 'edit') $('input').value = '';
  context = c;
  renderContext();
  if (c?.type === 'edit') $('input').value = state.current.timeline.get(c.seq).text;
  $('input').focus();
}

function renderContext() {
  $('context').hidden = !context;
  if (!context) return;
  const m = state.current.timeline.get(context.seq);
  $('context-text').replaceChildren(...(context.type === 'edit'
    ? ['Editing your message']
    : ['Replying to ', nameOf(m.sender), ': ', m.text.slice(0, 80)]));
}

function submitMessage(e) {
  e.preventDefault();
  const text = $('input').value.trim();
  if (!text || !state.current) return;
  const room = state.current.id;
  const sent = context?.type === 'edit'
    ? state.client.edit(room, context.seq, text)
    : state.client.send(room, text, { replyToSeq: context?.type === 'reply' ? context.seq : undefined });
  sent.catch(() => {}); // sendFailed tells
  state.client.typing(room, false);
  $('input').value = '';
  setContext(null);
  scrollToBottom();
}

// --- wiring ----------------------------------------------------------------

$('back').addEventListener('click', () => { location.hash = ''; });
$('context-cancel').addEventListener('click', () => setContext(null));
$('composer').addEventListener('submit', submitMessage);
$('input').addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) submitMessage(e);
});
$('input').addEventListener('input', () => state.current && state.client.typing(state.current.id, $('input').value.trim() !== ''));
$('scroller').addEventListener('scroll', () => {
  if (!state.current) return;
  pinned = atBottom();
  if (scroller().scrollTop < 80) loadOlder(state.current);
  markRead();
});
window.addEventListener('hashchange', openFromHash);
document.addEventListener('keydown', (e) => {
  if (e.key !== 'Escape' || !state.current) return;
  if (context) setContext(null);
  else location.hash = '';
});
