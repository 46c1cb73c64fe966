// SDK unit tests under Node's test runner, against a fake gateway:
// reconnect and resume, ack and retry, dedup, heartbeats, the timeline fold
// and the HTTP client.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { ParleyApi, ParleyClient, ParleyError, Timeline } from '../sdk/parley.js';
import { FakeGateway, MemoryStorage, waitFor } from './fake-gateway.mjs';

// Short timings so that retries and backoff happen within a test.
const FAST = {
  url: 'ws://fake/ws',
  heartbeatInterval: 200,
  heartbeatTimeout: 100,
  requestTimeout: 1000,
  ackTimeout: 80,
  reconnectDelay: 5,
  maxReconnectDelay: 20,
  typingInterval: 50,
  typingTimeout: 60,
};

function client(gw, opts = {}) {
  const c = new ParleyClient({ ...FAST, token: 'good', WebSocket: gw.WebSocket, storage: null, ...opts });
  const seen = [];
  c.on('message', (m) => seen.push(m));
  return { c, seen };
}

const seqs = (ms) => ms.map((m) => m.seq);
const range = (a, b) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

test('authenticates with the subprotocol and a frame, never the URL', async (t) => {
  const gw = new FakeGateway();
  const { c } = client(gw);
  t.after(() => c.close());
  const states = [];
  c.on('state', (s) => states.push(s.state));
  await c.connect();
  assert.equal(c.state, 'open');
  assert.equal(c.user, 'me');
  assert.equal(gw.current.protocol, 'parley.v1.json');
  assert.equal(gw.current.url, 'ws://fake/ws');
  assert.deepEqual(gw.frames[0].frame, { id: '1', auth: { token: 'good' } });
  assert.deepEqual(states, ['connecting', 'open']);
});

test('subscribe delivers live messages in the SDK form', async (t) => {
  const gw = new FakeGateway();
  gw.append('r1', 'bob', 'old');
  const { c, seen } = client(gw);
  t.after(() => c.close());
  await c.connect();
  assert.deepEqual(await c.subscribe('r1'), { headSeq: 1 });
  assert.equal(c.lastSeq('r1'), 1);
  gw.append('r1', 'bob', 'hello');
  await waitFor(() => seen.length === 1);
  assert.equal(seen[0].seq, 2);
  assert.equal(seen[0].text, 'hello');
  assert.equal(seen[0].kind, 'text');
  assert.equal(seen[0].sender, 'bob');
});

test('reconnects by itself and resumes each room after its last seq: no gap, no duplicate', async (t) => {
  const gw = new FakeGateway();
  const { c, seen } = client(gw);
  t.after(() => c.close());
  await c.connect();
  await c.subscribe('r1', { afterSeq: 0 });
  await c.subscribe('r2', { afterSeq: 0 });
  for (const i of range(1, 3)) gw.append('r1', 'bob', 'a' + i);
  await waitFor(() => seen.length === 3);

  const states = [];
  c.on('state', (s) => states.push(s.state));
  gw.drop(1001);
  // Sent while the client is away: it must get each once, in order.
  for (const i of range(4, 6)) gw.append('r1', 'bob', 'a' + i);
  gw.append('r2', 'bob', 'b1');
  await waitFor(() => seen.length === 7, 2000, 'resumed messages');
  assert.deepEqual(seqs(seen.filter((m) => m.room === 'r1')), range(1, 6));
  assert.deepEqual(seqs(seen.filter((m) => m.room === 'r2')), [1]);
  assert.equal(gw.sockets.length, 2);
  const resumes = gw.frames.filter((f) => f.socket === 1 && f.frame.subscribe).map((f) => f.frame.subscribe);
  assert.deepEqual(resumes, [{ room: 'r1', after_seq: '3' }, { room: 'r2', after_seq: '0' }]);
  assert.ok(states.includes('reconnecting'));
  assert.equal(states.at(-1), 'open');
});

test('backs off exponentially with jitter while the server is away', async (t) => {
  const gw = new FakeGateway();
  const { c } = client(gw, { reconnectDelay: 10, maxReconnectDelay: 40 });
  t.after(() => c.close());
  await c.connect();
  gw.refuse = true;
  const delays = [];
  c.on('state', (s) => s.delay !== undefined && delays.push(s.delay));
  gw.drop();
  await waitFor(() => delays.length >= 5);
  c.close();
  const steps = [10, 20, 40, 40, 40];
  delays.slice(0, 5).forEach((d, i) => assert.ok(d >= steps[i] / 2 && d <= steps[i], `delay ${i} = ${d}, want ${steps[i] / 2}..${steps[i]}`));
});

test('drops events it has seen and refills a gap by subscribing again', async (t) => {
  const gw = new FakeGateway();
  const { c, seen } = client(gw);
  t.after(() => c.close());
  await c.connect();
  await c.subscribe('r1', { afterSeq: 0 });
  const m1 = gw.append('r1', 'bob', 'one');
  await waitFor(() => seen.length === 1);

  gw.push(gw.current, { message: m1 }); // a duplicate
  // Two messages stored, but only the second reaches the client live.
  const m2 = { ...m1, seq: '2', body: { text: 'two' } };
  const m3 = { ...m1, seq: '3', body: { text: 'three' } };
  gw.log('r1').push(m2, m3);
  gw.push(gw.current, { message: m3 });
  await waitFor(() => seen.length === 3, 2000, 'the gap to be filled');
  assert.deepEqual(seqs(seen), [1, 2, 3]);
  assert.deepEqual(seen.map((m) => m.text), ['one', 'two', 'three']);
  const last = gw.frames.filter((f) => f.frame.subscribe).at(-1).frame.subscribe;
  assert.deepEqual(last, { room: 'r1', after_seq: '1' });
});

test('resends an unacknowledged message with the same client_msg_id, storing it once', async (t) => {
  const gw = new FakeGateway();
  const { c } = client(gw);
  t.after(() => c.close());
  await c.connect();
  gw.ackless = 2;
  const ack = await c.send('r1', 'hi');
  assert.equal(ack.seq, 1);
  assert.equal(ack.duplicate, true);
  const sends = gw.frames.filter((f) => f.frame.send).map((f) => f.frame);
  assert.equal(sends.length, 3);
  assert.equal(new Set(sends.map((f) => f.send.client_msg_id)).size, 1);
  assert.equal(new Set(sends.map((f) => f.id)).size, 3, 'each attempt is a new request');
  assert.equal(gw.log('r1').length, 1);
  assert.deepEqual(c.pending(), []);
});

test('keeps sends made while disconnected and sends them once reconnected', async (t) => {
  const gw = new FakeGateway();
  const { c } = client(gw, { reconnectDelay: 50, maxReconnectDelay: 50 });
  t.after(() => c.close());
  await c.connect();
  gw.drop();
  const pendingEvents = [];
  c.on('pending', (e) => pendingEvents.push(e.room));
  const a = c.send('r1', 'first');
  const b = c.send('r1', 'second', { replyToSeq: 1 });
  assert.deepEqual(c.pending('r1').map((p) => p.text), ['first', 'second']);
  assert.equal(c.pending('r1')[1].replyToSeq, 1);
  const [ackA, ackB] = await Promise.all([a, b]);
  assert.deepEqual([ackA.seq, ackB.seq], [1, 2]);
  assert.deepEqual(gw.log('r1').map((m) => m.body.text), ['first', 'second']);
  assert.equal(gw.log('r1')[1].reply_to_seq, '1');
  assert.deepEqual(c.pending(), []);
  assert.ok(pendingEvents.length >= 4);
});

test('a send whose connection drops before the ack is resent after reconnecting, stored once', async (t) => {
  const gw = new FakeGateway();
  const { c } = client(gw, { ackTimeout: 5000 });
  t.after(() => c.close());
  await c.connect();
  gw.ackless = 1;
  const sent = c.send('r1', 'once');
  await waitFor(() => gw.log('r1').length === 1);
  gw.drop();
  const ack = await sent;
  assert.equal(ack.seq, 1);
  assert.equal(gw.log('r1').length, 1);
});

test('the sender\'s own copy settles a pending send', async (t) => {
  const gw = new FakeGateway();
  const { c, seen } = client(gw, { ackTimeout: 5000 });
  t.after(() => c.close());
  await c.connect();
  await c.subscribe('r1');
  gw.ackless = 1;
  const acks = [];
  c.on('ack', (a) => acks.push(a));
  const ack = await c.send('r1', 'mine');
  assert.equal(ack.seq, 1);
  assert.equal(seen.length, 1);
  assert.equal(acks.length, 1);
});

test('retries retryable errors and gives up on the others', async (t) => {
  const gw = new FakeGateway();
  const { c } = client(gw);
  t.after(() => c.close());
  await c.connect();
  gw.failSends = ['UNAVAILABLE', 'RATE_LIMITED'];
  assert.equal((await c.send('r1', 'eventually')).seq, 1);

  gw.failSends = ['FORBIDDEN'];
  const failed = [];
  c.on('sendFailed', (f) => failed.push(f));
  await assert.rejects(c.send('r1', 'never'), (err) => err instanceof ParleyError && err.code === 'FORBIDDEN' && !err.retryable);
  assert.equal(failed.length, 1);
  assert.equal(failed[0].text, 'never');
  assert.deepEqual(c.pending(), []);
});

test('edits, deletes and reactions go out as their kinds', async (t) => {
  const gw = new FakeGateway();
  const { c } = client(gw);
  t.after(() => c.close());
  await c.connect();
  await c.send('r1', 'text');
  await c.edit('r1', 1, 'better');
  await c.react('r1', 1, '👍');
  await c.react('r1', 1, '👍', false);
  await c.delete('r1', 1);
  const sent = gw.log('r1').map(({ kind, ref_seq, reaction, body }) => ({ kind, ref_seq, reaction, text: body?.text }));
  assert.deepEqual(sent, [
    { kind: undefined, ref_seq: undefined, reaction: undefined, text: 'text' },
    { kind: 'MESSAGE_KIND_EDIT', ref_seq: '1', reaction: undefined, text: 'better' },
    { kind: 'MESSAGE_KIND_REACTION_ADD', ref_seq: '1', reaction: '👍', text: undefined },
    { kind: 'MESSAGE_KIND_REACTION_REMOVE', ref_seq: '1', reaction: '👍', text: undefined },
    { kind: 'MESSAGE_KIND_DELETE', ref_seq: '1', reaction: undefined, text: undefined },
  ]);
});

test('pending sends survive a page load through storage', async (t) => {
  const gw = new FakeGateway();
  const storage = new MemoryStorage();
  const first = client(gw, { storage }).c;
  await first.connect();
  gw.silent = true; // nothing is acked
  first.send('r1', 'kept').catch(() => {});
  await waitFor(() => storage.getItem('parley.pending.me') !== null);
  first.close();

  gw.silent = false;
  const second = client(gw, { storage }).c;
  t.after(() => second.close());
  const acks = [];
  second.on('ack', (a) => acks.push(a));
  await second.connect();
  await waitFor(() => acks.length === 1);
  assert.deepEqual(gw.log('r1').map((m) => m.body.text), ['kept']);
  assert.equal(storage.getItem('parley.pending.me'), null);
});

test('a silent connection is pinged, then given up and replaced', async (t) => {
  const gw = new FakeGateway();
  const { c } = client(gw, { heartbeatInterval: 30, heartbeatTimeout: 30 });
  t.after(() => c.close());
  await c.connect();
  await waitFor(() => gw.frames.some((f) => f.frame.ping), 1000, 'a ping');
  assert.equal(gw.sockets.length, 1, 'an answered ping keeps the connection');
  gw.silent = true;
  await waitFor(() => gw.sockets.length >= 2, 1000, 'a new connection');
  assert.equal(gw.sockets[0].closeCode, 4000);
  gw.silent = false;
  await waitFor(() => c.state === 'open');
});

test('a refused token is refreshed once; refused again, the client stops', async (t) => {
  const gw = new FakeGateway();
  const asked = [];
  let tok = 'expired';
  const { c } = client(gw, { token: ({ refresh }) => { asked.push(refresh); return refresh ? tok : 'expired'; } });
  t.after(() => c.close());
  tok = 'good';
  await c.connect();
  assert.deepEqual(asked, [false, true]);

  gw.tokens.clear();
  const failed = [];
  c.on('authFailed', (e) => failed.push(e.code));
  gw.drop();
  await waitFor(() => c.state === 'closed');
  assert.deepEqual(failed, ['AUTH_FAILED']);
  await assert.rejects(c.history('r1'), (err) => err.code === 'CLOSED');
});

test('requests made while reconnecting wait for the connection', async (t) => {
  const gw = new FakeGateway();
  gw.append('r1', 'bob', 'a');
  gw.append('r1', 'bob', 'b');
  const { c } = client(gw, { reconnectDelay: 30, maxReconnectDelay: 30 });
  t.after(() => c.close());
  await c.connect();
  gw.drop();
  const page = await c.history('r1', { limit: 1 });
  assert.deepEqual(seqs(page.messages), [2]);
  assert.equal(page.hasMore, true);
});

test('typing is throttled when sent and expires when received', async (t) => {
  const gw = new FakeGateway();
  const { c } = client(gw);
  t.after(() => c.close());
  await c.connect();
  c.typing('r1');
  c.typing('r1');
  c.typing('r1', false);
  c.typing('r1', false);
  await waitFor(() => gw.frames.filter((f) => f.frame.typing).length === 2);
  assert.deepEqual(gw.frames.filter((f) => f.frame.typing).map((f) => f.frame.typing.active), [true, false]);

  const events = [];
  c.on('typing', (e) => events.push(e.active));
  gw.push(gw.current, { typing: { room: 'r1', user: 'bob', active: true } });
  gw.push(gw.current, { typing: { room: 'r1', user: 'bob', active: true } });
  assert.deepEqual(c.typingUsers('r1'), ['bob']);
  await waitFor(() => events.length === 2, 1000, 'typing to expire');
  assert.deepEqual(events, [true, false]);
  assert.deepEqual(c.typingUsers('r1'), []);
});

test('typing keystrokes, stops, sends and room switches never trip the server\'s typing limit', async (t) => {
  const gw = new FakeGateway(); // refuses typing over the server's limit: 1/s, burst 5
  const { c } = client(gw, { heartbeatInterval: 600_000, typingInterval: 3000, typingTimeout: 6000 });
  t.after(() => c.close());
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: Date.now() });
  c.connect();
  while (c.state !== 'open') {
    t.mock.timers.tick(1);
    await new Promise((resolve) => setImmediate(resolve));
  }

  // A minute of a busy user: a keystroke every 100 ms, the input emptied
  // now and then (a stop), messages sent, and chats switched (a stop there).
  let seed = 7;
  const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const rooms = ['r1', 'r2', 'r3'];
  let room = 'r1';
  for (let i = 0; i < 600; i++) {
    const x = rand();
    if (x < 0.7) c.typing(room, true);
    else if (x < 0.8) c.typing(room, false);
    else if (x < 0.9) c.send(room, 'm' + i).catch(() => {});
    else {
      c.typing(room, false);
      room = rooms[Math.floor(rand() * rooms.length)];
    }
    t.mock.timers.tick(100);
  }
  for (const r of rooms) c.typing(r, false);
  t.mock.timers.tick(30_000); // stops that waited for the budget go out

  const frames = gw.frames.filter((f) => f.frame.typing);
  assert.equal(gw.typingRefused, 0, `typing frames refused as RATE_LIMITED, of ${frames.length}`);
  assert.ok(frames.length >= 20, `typing is still signalled (${frames.length} frames)`);
  // No stop is lost: in each room the user's last word is a stop or a message.
  for (const r of rooms) {
    const last = gw.frames.findLast((f) => f.frame.typing?.room === r || f.frame.send?.room === r);
    assert.ok(!last?.frame.typing?.active, `typing in ${r} ends`);
  }
});

test('presence, receipts and unread counts become events', async (t) => {
  const gw = new FakeGateway();
  const { c } = client(gw);
  t.after(() => c.close());
  await c.connect();
  const got = {};
  for (const type of ['presence', 'read', 'unread', 'roomOnline']) c.on(type, (e) => { got[type] = e; });
  gw.push(gw.current, { presence: { user: 'bob', online: true } });
  gw.push(gw.current, { read: { room: 'r1', user: 'bob', seq: '7' } });
  gw.push(gw.current, { unread: { room: 'r1', head_seq: '9', read_seq: '7', unread: '2' } });
  gw.push(gw.current, { room_online: { room: 'r2', online: '40' } });
  assert.deepEqual(got, {
    presence: { user: 'bob', online: true, lastSeen: 0 },
    read: { room: 'r1', user: 'bob', seq: 7 },
    unread: { room: 'r1', headSeq: 9, readSeq: 7, unread: 2 },
    roomOnline: { room: 'r2', online: 40 },
  });
  assert.deepEqual(c.presence('bob'), { user: 'bob', online: true, lastSeen: 0 });
});

// --- Timeline ---------------------------------------------------------------

const entry = (seq, kind, extra = {}) => ({ room: 'r', seq, sender: 'ann', kind, text: '', attachments: [], refSeq: 0, reaction: '', ...extra });

test('Timeline folds edits, deletes and reactions whatever the order entries arrive in', () => {
  const log = [
    entry(1, 'text', { text: 'hello' }),
    entry(2, 'text', { text: 'second', sender: 'bob' }),
    entry(3, 'edit', { refSeq: 1, text: 'hello!' }),
    entry(4, 'reaction_add', { refSeq: 1, reaction: '👍', sender: 'bob' }),
    entry(5, 'reaction_add', { refSeq: 1, reaction: '👍', sender: 'cy' }),
    entry(6, 'edit', { refSeq: 1, text: 'hello!!' }),
    entry(7, 'reaction_remove', { refSeq: 1, reaction: '👍', sender: 'bob' }),
    entry(8, 'edit', { refSeq: 2, text: 'not bob', sender: 'ann' }), // only the sender may edit
    entry(9, 'delete', { refSeq: 2, sender: 'bob' }),
    entry(10, 'member_joined', { targetUsers: ['dan'] }),
  ];
  const inOrder = new Timeline();
  inOrder.add(log);
  // Newest page first, then live entries overlapping it, then the older page.
  const shuffled = new Timeline();
  shuffled.add(log.slice(5));
  const changed = shuffled.add([log[9], log[6], log[5]]);
  assert.equal(changed.size, 0, 'seen entries change nothing');
  assert.deepEqual([...shuffled.add(log.slice(0, 5))].sort(), [1, 2]);

  for (const tl of [inOrder, shuffled]) {
    assert.deepEqual(tl.seqs(), [1, 2, 10]);
    const one = tl.get(1);
    assert.equal(one.text, 'hello!!');
    assert.equal(one.edited, true);
    assert.deepEqual(one.reactions, [{ emoji: '👍', users: ['cy'] }]);
    const two = tl.get(2);
    assert.equal(two.deleted, true);
    assert.equal(two.text, '');
    assert.equal(two.edited, false);
    assert.equal(tl.oldest, 1);
    assert.equal(tl.newest, 10);
  }
  assert.equal(inOrder.get(3), undefined, 'references are not items');
});

// --- ParleyApi --------------------------------------------------------------

function fakeFetch(routes) {
  const calls = [];
  const fetch = async (url, init) => {
    calls.push({ url, method: init.method, auth: init.headers.Authorization, body: init.body && JSON.parse(init.body) });
    const [status, body] = routes(url, init);
    return { status, ok: status < 400, statusText: String(status), json: async () => body };
  };
  return { fetch, calls };
}

const login = (n) => ({
  user: { id: 'u1', handle: 'ann', display_name: 'Ann', created_at: '2026-01-01T00:00:00Z' },
  access_token: 'at' + n,
  refresh_token: 'rt' + n,
  expires_at: new Date(Date.now() + 15 * 60_000).toISOString(),
  refresh_expires_at: new Date(Date.now() + 86_400_000).toISOString(),
});

test('ParleyApi logs in, answers camelCase and refreshes a refused token once', async () => {
  let valid = 'at1';
  const { fetch, calls } = fakeFetch((url, init) => {
    if (url === '/api/v1/sessions') return [200, login(1)];
    if (url === '/api/v1/sessions/refresh') return [200, login(2)];
    if (init.headers.Authorization !== 'Bearer ' + valid) return [401, { error: { code: 'UNAUTHENTICATED', message: 'expired' } }];
    return [200, { friends: [{ user: { id: 'u2', display_name: 'Bob' }, since: 'x' }] }];
  });
  const saved = [];
  const api = new ParleyApi({ fetch, onSession: (s) => saved.push(s) });
  const s = await api.login({ handle: 'ann', password: 'pw' });
  assert.equal(s.user.displayName, 'Ann');
  assert.equal(typeof s.expiresAt, 'number');
  assert.deepEqual(await api.friends({ limit: 10 }), { friends: [{ user: { id: 'u2', displayName: 'Bob' }, since: 'x' }] });
  assert.equal(calls[1].url, '/api/v1/friends?limit=10');

  valid = 'at2'; // the server revoked at1
  await api.friends();
  assert.deepEqual(calls.slice(2).map((c) => c.url), ['/api/v1/friends', '/api/v1/sessions/refresh', '/api/v1/friends']);
  assert.deepEqual(calls[3].body, { refresh_token: 'rt1' });
  assert.equal(api.session.accessToken, 'at2');
  assert.equal(saved.length, 2);
});

test('ParleyApi refreshes ahead of expiry, once for concurrent callers, and forgets a dead session', async () => {
  let refreshes = 0;
  let alive = true;
  const { fetch } = fakeFetch((url) => {
    if (url === '/api/v1/sessions/refresh') {
      refreshes++;
      return alive ? [200, login(3)] : [401, { error: { code: 'UNAUTHENTICATED', message: 'revoked' } }];
    }
    return [200, {}];
  });
  const expiring = { ...login(1), accessToken: 'at1', refreshToken: 'rt1', expiresAt: Date.now() + 1000, refreshExpiresAt: Date.now() + 86_400_000 };
  const api = new ParleyApi({ fetch, session: expiring });
  assert.deepEqual(await Promise.all([api.token(), api.token()]), ['at3', 'at3']);
  assert.equal(refreshes, 1);

  alive = false;
  await assert.rejects(api.token({ refresh: true }), (err) => err.code === 'UNAUTHENTICATED' && err.status === 401);
  assert.equal(api.session, null);
  await assert.rejects(api.me(), (err) => err.code === 'UNAUTHENTICATED');
});
