// Parley web client, built on the SDK (/sdk/parley.js): the entry module.
// Logging in and out, the session's client and its events, and the page's
// wiring (the chat pane wires its own); the rest is in ui.js, rooms.js,
// chat.js and friends.js.
import { ParleyClient } from '/sdk/parley.js';
import { $, api, avatar, displayName, rememberProfile, rooms, state, toast } from './ui.js';
import { closeRoom, markRead, renderChatHeader, renderOutbox, renderTyping, settle } from './chat.js';
import { createGroup, onSearch, refreshFriends, selectTab } from './friends.js';
import { dropRoom, onMessage, onPresence, onRead, onUnread, refreshRooms } from './rooms.js';

const POLL_MS = 15_000; // friends and rooms are refreshed this often (the server pushes neither)
let pollTimer = null;

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
  state.me = api.session.user;
  rememberProfile(state.me);
  $('auth').hidden = true;
  $('main').hidden = false;
  $('me-name').textContent = displayName(state.me);
  $('me-handle').textContent = '@' + state.me.handle;
  $('me-avatar').replaceWith(Object.assign(avatar(state.me.id, { presence: false }), { id: 'me-avatar' }));

  state.client = new ParleyClient({ token: (o) => api.token(o) });
  state.client.on('state', onState);
  state.client.on('message', onMessage);
  state.client.on('pending', ({ room }) => room === state.current?.id && renderOutbox());
  state.client.on('sendFailed', ({ error }) => toast('Message not sent: ' + error.message));
  state.client.on('typing', ({ room }) => room === state.current?.id && renderTyping());
  state.client.on('presence', onPresence);
  state.client.on('read', onRead);
  state.client.on('unread', onUnread);
  state.client.on('roomOnline', ({ room, online }) => {
    const r = rooms.get(room);
    if (r) r.online = online;
    if (r === state.current) renderChatHeader();
  });
  state.client.on('roomError', ({ room }) => dropRoom(room));
  state.client.on('authFailed', () => signOut('Your session has ended. Please log in again.'));
  state.client.connect().catch(() => {}); // authFailed tells

  refreshFriends();
  pollTimer = setInterval(poll, POLL_MS);
}

async function signOut(message = '') {
  clearInterval(pollTimer);
  state.client?.close();
  state.client = null;
  await api.logout();
  rooms.clear();
  closeRoom();
  for (const id of ['rooms', 'friends', 'incoming', 'outgoing', 'search-results']) $(id).replaceChildren();
  $('auth-form').reset();
  setAuthMode(false);
  showAuth(message);
}

function poll() {
  if (document.visibilityState !== 'visible' || state.client?.state !== 'open') return;
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
  if (!state.current) return;
  renderOutbox();
  if (state === 'open') settle(state.current); // history that failed to load meanwhile
}

// --- wiring -----------------------------------------------------------------

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
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState !== 'visible') return;
  markRead();
  poll();
});

if (api.session) start();
else showAuth();
