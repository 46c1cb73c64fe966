// Friends, requests, search by handle, making groups, and the sidebar's tabs.
import { $, api, avatar, displayName, h, rememberProfile, report, state } from './ui.js';
import { ensureRoom, openDirect } from './rooms.js';

let social = { friends: [], incoming: [], outgoing: [] };

// --- friends ----------------------------------------------------------------

export async function refreshFriends() {
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

export function renderFriends() {
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

export function onSearch() {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(async () => {
    const prefix = $('search').value.trim().toLowerCase();
    searchResults = [];
    if (/^[a-z0-9_.]{3,32}$/.test(prefix)) {
      try {
        searchResults = (await api.findUsers(prefix, { limit: 20 })).users.filter((p) => p.id !== state.me.id);
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

export async function createGroup(e) {
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

// --- tabs ------------------------------------------------------------------

export function selectTab(friends) {
  $('tab-chats').setAttribute('aria-selected', String(!friends));
  $('tab-friends').setAttribute('aria-selected', String(friends));
  $('panel-chats').hidden = friends;
  $('panel-friends').hidden = !friends;
  if (friends) refreshFriends();
}
