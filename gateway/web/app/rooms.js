// The room list: the user's rooms, their previews and unread counts, and
// the live events that change them.
import { Timeline } from '/sdk/parley.js';
import { $, api, avatar, avatarColor, describe, h, nameOf, report, rooms, shortTime, state } from './ui.js';
import { closeRoom, markRead, openFromHash, renderChatHeader, renderMessages, renderTicks } from './chat.js';
import { renderFriends, selectTab } from './friends.js';

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
      r.peer = members.find((m) => m.user !== state.me.id)?.user ?? state.me.id;
      renderRooms();
      if (r === state.current) renderChatHeader();
    }, report('Loading a chat'));
  }
  return r;
}

export function dropRoom(id) {
  rooms.delete(id);
  state.client?.unsubscribe(id);
  if (state.current?.id === id) closeRoom();
  renderRooms();
}

export async function refreshRooms() {
  let list;
  try {
    list = await state.client.syncAll();
  } catch (err) {
    return report('Loading chats')(err);
  }
  // Rooms the user leaves go away with their member_left event, not here:
  // the room index may lag behind a room just made.
  for (const s of list) {
    let r = rooms.get(s.room);
    if (!r) {
      r = addRoom(s);
      state.client.subscribe(s.room, { afterSeq: s.headSeq }).catch(report('Following a chat'));
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
export async function openDirect(user) {
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
export async function ensureRoom(room) {
  if (rooms.has(room.id)) return;
  const r = addRoom({ room: room.id, kind: room.kind, name: room.name });
  const { headSeq } = await state.client.subscribe(room.id);
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
  state.client.history(r.id, { beforeSeq: r.preview.newest + 1, limit: 20 }).then((page) => {
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

export function roomAvatar(r) {
  if (r.kind === 'direct') return avatar(r.peer);
  return h('span', { class: 'avatar group ' + avatarColor(r.id) }, (r.name || '#').slice(0, 1).toUpperCase());
}

export function roomTitle(r) {
  return r.kind === 'direct' ? (r.peer ? nameOf(r.peer) : h('span', {}, 'Direct chat')) : h('span', {}, r.name || 'Unnamed group');
}

export function renderRooms() {
  const sorted = [...rooms.values()].sort((a, b) => lastActive(b) - lastActive(a));
  $('rooms').replaceChildren(...sorted.map((r) => {
    const n = unread(r);
    return h('li', {},
      h('button', { type: 'button', class: 'room' + (r === state.current ? ' active' : ''), 'data-room': r.id, 'aria-current': r === state.current ? 'true' : undefined, onclick: () => { location.hash = r.id; } },
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

export function onMessage(m) {
  const r = rooms.get(m.room);
  if (!r) return;
  r.head = Math.max(r.head, m.seq);
  addPreview(r, [m]);
  if (m.kind === 'room_renamed') r.name = m.text;
  if ((m.kind === 'member_left' || m.kind === 'member_removed') && m.targetUsers.includes(state.me.id)) return dropRoom(r.id);
  if (r.timeline) {
    const changed = r.timeline.add([m]);
    if (r === state.current) renderMessages(changed);
  }
  if (r === state.current) markRead();
  renderRooms();
}

export function onPresence() {
  renderRooms();
  renderFriends();
  if (state.current) renderChatHeader();
}

export function onRead({ room, user, seq }) {
  const r = rooms.get(room);
  if (!r) return;
  r.reads.set(user, Math.max(r.reads.get(user) ?? 0, seq));
  if (r === state.current) renderTicks();
}

// The user's other devices read something.
export function onUnread({ room, headSeq, readSeq }) {
  const r = rooms.get(room);
  if (!r) return;
  r.head = Math.max(r.head, headSeq);
  r.read = Math.max(r.read, readSeq);
  renderRooms();
}
