// Parley JavaScript SDK: a WebSocket client of the parley.v1.json protocol
// (ParleyClient), a client of the HTTP API (ParleyApi) and a fold of a
// room's log into displayable messages (Timeline). An ES module with no
// dependencies. The protocol is in schemas/README.md; this API in README.md
// next to this file.

/** The WebSocket subprotocol the client speaks. */
export const SUBPROTOCOL = 'parley.v1.json';

// Error codes worth retrying with the same request.
const RETRYABLE = new Set(['UNAVAILABLE', 'OVERLOADED', 'RATE_LIMITED', 'INTERNAL', 'DISCONNECTED', 'TIMEOUT']);

/** An error answered by the server (code without the ERROR_CODE_ prefix) or made by the SDK. */
export class ParleyError extends Error {
  constructor(code, message, status = 0) {
    super(message || code);
    this.name = 'ParleyError';
    this.code = code;
    this.status = status;
  }

  /** Whether the same request may succeed later. */
  get retryable() {
    return RETRYABLE.has(this.code);
  }
}

/** A minimal event emitter: on() returns a function that removes the handler. */
class Emitter {
  #handlers = new Map();

  on(type, fn) {
    if (!this.#handlers.has(type)) this.#handlers.set(type, new Set());
    this.#handlers.get(type).add(fn);
    return () => this.off(type, fn);
  }

  off(type, fn) {
    this.#handlers.get(type)?.delete(fn);
  }

  emit(type, payload) {
    for (const fn of [...(this.#handlers.get(type) ?? [])]) {
      try {
        fn(payload);
      } catch (err) {
        // A failing handler must not break the client: report it aside.
        queueMicrotask(() => { throw err; });
      }
    }
  }
}

// ---------------------------------------------------------------------------
// Wire format: protojson with snake_case names, 64-bit integers as strings,
// zero values omitted. The SDK hands out camelCase objects with numbers.

const num = (v) => (v === undefined || v === null ? 0 : Number(v));

/** Message kinds as the SDK names them; the wire form is MESSAGE_KIND_<UPPER>. */
export const KINDS = Object.freeze([
  'text', 'edit', 'delete', 'reaction_add', 'reaction_remove',
  'member_joined', 'member_left', 'member_removed', 'member_role_changed', 'room_renamed',
]);

const kindToWire = (kind) => 'MESSAGE_KIND_' + kind.toUpperCase();
const kindFromWire = (kind) => (kind ? kind.replace(/^MESSAGE_KIND_/, '').toLowerCase() : 'text');

/** Converts a wire Message into the SDK's form. */
export function messageFromWire(m) {
  return {
    room: m.room,
    seq: num(m.seq),
    sender: m.sender ?? '',
    clientMsgId: m.client_msg_id ?? '',
    sentAt: num(m.sent_at),
    kind: kindFromWire(m.kind),
    text: m.body?.text ?? '',
    attachments: m.body?.attachments ?? [],
    refSeq: num(m.ref_seq),
    reaction: m.reaction ?? '',
    replyToSeq: num(m.reply_to_seq),
    mentions: m.mentions ?? [],
    targetUsers: m.target_users ?? [],
    role: m.role ?? '',
  };
}

function summaryFromWire(s) {
  return {
    room: s.room,
    kind: s.kind ?? '',
    name: s.name ?? '',
    role: s.role ?? '',
    headSeq: num(s.head_seq),
    readSeq: num(s.read_seq),
    unread: num(s.unread),
    lastMessage: s.last_message ? messageFromWire(s.last_message) : null,
  };
}

// Error frames carry ERROR_CODE_<CODE>; HTTP errors carry <CODE>.
const errorFromWire = (e) => new ParleyError((e.code ?? 'ERROR_CODE_UNSPECIFIED').replace(/^ERROR_CODE_/, ''), e.message ?? '');

/** A new client message id: unique per sender, printable ASCII. */
export function newClientMsgId() {
  if (globalThis.crypto?.randomUUID) return globalThis.crypto.randomUUID();
  return Date.now().toString(36) + '-' + Math.random().toString(36).slice(2, 12);
}

// ---------------------------------------------------------------------------

const DEFAULTS = {
  heartbeatInterval: 20_000, // ping after this long without a frame
  heartbeatTimeout: 10_000, // then give the connection up after this long
  requestTimeout: 15_000, // a request (waiting for the connection included)
  ackTimeout: 10_000, // resend a message (same client_msg_id) if unacked
  reconnectDelay: 500, // first reconnect delay; doubles up to maxReconnectDelay
  maxReconnectDelay: 30_000,
  stableAfter: 30_000, // a connection up this long resets the backoff
  typingInterval: 3_000, // resend typing this often while the user types
  // Typing frames of all rooms together, started and stopped: a token
  // bucket of typingRate per second and typingBurst at once. Half the
  // server's default limit (--rate-typing 1/s, burst 5) and under its burst,
  // so that the user's devices, each alone or two together, never trip it.
  typingRate: 0.5,
  typingBurst: 2,
  typingTimeout: 6_000, // forget another user's typing after this long
};

/**
 * ParleyClient is one user's connection to a gateway. It authenticates,
 * reconnects with backoff and resumes every subscribed room after the last
 * seq it delivered, retries sends until they are acknowledged, and emits
 * events: 'state', 'message', 'typing', 'read', 'unread', 'presence',
 * 'roomOnline', 'ack', 'pending', 'sendFailed', 'roomError', 'authFailed'.
 */
export class ParleyClient extends Emitter {
  #opts;
  #token;
  #WebSocket;
  #storage;
  #ws = null;
  #state = 'idle';
  #user = '';
  #attempt = 0;
  #openedAt = 0;
  #forceRefresh = false; // the last auth failed: ask the token provider for a fresh one
  #reconnectTimer = null;
  #watchdog = null;
  #pinging = false;
  #nextId = 1;
  #inflight = new Map(); // request id -> {resolve, reject, timer}
  #openWaiters = new Set(); // requests waiting for the connection
  #rooms = new Map(); // room -> {last, resyncing}
  #pending = new Map(); // client_msg_id -> pending send, in creation order
  #typingSent = new Map(); // room -> when we last said we type
  #typingLater = new Map(); // room -> timer of a typing frame waiting for the budget
  #typingBudget = null; // {tokens, at}: the typing token bucket
  #typers = new Map(); // room -> Map(user -> expiry timer)
  #presence = new Map();
  #connected = null; // {resolve, reject} of connect()

  /**
   * @param {object} options
   * @param {string} [options.url] ws(s)://host/ws; by default /ws of the page's host
   * @param {string | ((o: {refresh: boolean}) => string | Promise<string>)} options.token
   *   an access token, or a function giving one on each (re)connect
   * @param {typeof WebSocket} [options.WebSocket] a WebSocket implementation
   * @param {Storage | null} [options.storage] keeps unacknowledged sends across
   *   page loads (default localStorage where there is one)
   */
  constructor(options) {
    super();
    this.#opts = { ...DEFAULTS, ...options };
    const { token } = this.#opts;
    this.#token = typeof token === 'function' ? token : () => token;
    this.#WebSocket = this.#opts.WebSocket ?? globalThis.WebSocket;
    this.#storage = options.storage !== undefined ? options.storage : (globalThis.localStorage ?? null);
    if (!this.#opts.url) {
      const loc = globalThis.location;
      if (!loc) throw new TypeError('ParleyClient: url is required outside a browser');
      this.#opts.url = (loc.protocol === 'https:' ? 'wss://' : 'ws://') + loc.host + '/ws';
    }
  }

  /** 'idle', 'connecting', 'open' (authenticated), 'reconnecting' or 'closed'. */
  get state() {
    return this.#state;
  }

  /** The authenticated user's id ('' before the first authentication). */
  get user() {
    return this.#user;
  }

  /**
   * Connects and keeps connecting. Resolves once authenticated; rejects
   * with AUTH_FAILED if the token is refused, or CLOSED on close().
   */
  connect() {
    if (this.#state !== 'idle' && this.#state !== 'closed') return Promise.resolve();
    this.#attempt = 0;
    const done = new Promise((resolve, reject) => { this.#connected = { resolve, reject }; });
    this.#dial();
    return done;
  }

  /** Closes the connection for good; pending sends stay stored. */
  close() {
    this.#stop(new ParleyError('CLOSED', 'client closed'));
  }

  // --- connection -----------------------------------------------------------

  #setState(state, detail = {}) {
    this.#state = state;
    this.emit('state', { state, ...detail });
  }

  async #dial() {
    this.#reconnectTimer = null;
    if (this.#state !== 'reconnecting') this.#setState('connecting');
    let token;
    try {
      token = await this.#token({ refresh: this.#forceRefresh });
    } catch (err) {
      if (this.#state === 'closed') return;
      if (err?.code === 'UNAUTHENTICATED' || err?.code === 'AUTH_FAILED') return this.#authFailed(err);
      return this.#scheduleReconnect();
    }
    if (this.#state === 'closed') return;
    const ws = new this.#WebSocket(this.#opts.url, SUBPROTOCOL);
    this.#ws = ws;
    ws.onopen = () => this.#authenticate(ws, token);
    ws.onmessage = (e) => this.#onFrame(ws, e.data);
    ws.onclose = (e) => this.#dropped(ws, e.code);
    ws.onerror = () => {}; // a close event follows
    this.#armWatchdog(ws);
  }

  async #authenticate(ws, token) {
    try {
      const res = await this.#call(ws, { auth: { token } });
      this.#forceRefresh = false;
      this.#onAuthenticated(res.user_id);
    } catch (err) {
      if (ws !== this.#ws) return;
      if (err.code !== 'AUTH_FAILED') return this.#drop(ws);
      if (this.#forceRefresh) return this.#authFailed(err);
      // The token may just have expired: once more with a fresh one.
      this.#forceRefresh = true;
      this.#drop(ws, 0);
    }
  }

  #onAuthenticated(user) {
    const resumed = this.#user !== '';
    if (this.#user !== user) {
      this.#user = user;
      this.#restorePending();
    }
    this.#openedAt = Date.now();
    this.#setState('open', { resumed });
    for (const w of this.#openWaiters) w();
    this.#openWaiters.clear();
    // Resume every room, except those whose subscribe() waited for this.
    for (const [room, r] of this.#rooms) if (!r.resyncing) this.#resubscribe(room);
    for (const p of this.#pending.values()) this.#flush(p);
    this.#connected?.resolve();
    this.#connected = null;
  }

  #authFailed(err) {
    this.#stop(err);
    this.emit('authFailed', err);
  }

  #stop(err) {
    clearTimeout(this.#reconnectTimer);
    const ws = this.#ws;
    this.#ws = null;
    if (ws) this.#discard(ws, 1000);
    this.#cleanup(err);
    this.#setState('closed', { error: err });
    this.#connected?.reject(err);
    this.#connected = null;
  }

  // #drop gives a connection up at once (its close event may take long on a
  // dead network) and reconnects.
  #drop(ws, delay) {
    if (ws !== this.#ws) return;
    this.#discard(ws, 4000);
    this.#dropped(ws, 4000, delay);
  }

  #discard(ws, code) {
    ws.onopen = ws.onmessage = ws.onclose = null;
    try {
      ws.close(code);
    } catch {
      // already closed
    }
  }

  #dropped(ws, code, delay) {
    if (ws !== this.#ws) return;
    this.#ws = null;
    this.#cleanup(new ParleyError('DISCONNECTED', `connection closed (${code})`));
    if (this.#openedAt && Date.now() - this.#openedAt >= this.#opts.stableAfter) this.#attempt = 0;
    this.#openedAt = 0;
    this.#scheduleReconnect(delay);
  }

  // #cleanup fails what was in flight on the connection that ended.
  #cleanup(err) {
    clearTimeout(this.#watchdog);
    this.#pinging = false;
    for (const req of this.#inflight.values()) {
      clearTimeout(req.timer);
      req.reject(err);
    }
    this.#inflight.clear();
    for (const r of this.#rooms.values()) r.resyncing = false;
    this.#typingSent.clear();
    for (const t of this.#typingLater.values()) clearTimeout(t);
    this.#typingLater.clear();
  }

  #scheduleReconnect(delay) {
    if (this.#state === 'closed') return;
    if (delay === undefined) {
      // Exponential backoff with jitter: between half and all of the step.
      const step = Math.min(this.#opts.maxReconnectDelay, this.#opts.reconnectDelay * 2 ** this.#attempt);
      delay = step / 2 + Math.random() * (step / 2);
    }
    this.#attempt++;
    this.#setState('reconnecting', { attempt: this.#attempt, delay });
    this.#reconnectTimer = setTimeout(() => this.#dial(), delay);
  }

  // The watchdog pings after heartbeatInterval of silence and gives the
  // connection up after heartbeatTimeout more. Every frame rearms it.
  #armWatchdog(ws) {
    clearTimeout(this.#watchdog);
    this.#pinging = false;
    this.#watchdog = setTimeout(() => this.#silence(ws), this.#opts.heartbeatInterval);
  }

  #silence(ws) {
    if (ws !== this.#ws) return;
    if (this.#pinging || this.#state !== 'open') return this.#drop(ws);
    this.#pinging = true;
    this.#write(ws, { id: String(this.#nextId++), ping: { client_time: String(Date.now()) } });
    this.#watchdog = setTimeout(() => this.#silence(ws), this.#opts.heartbeatTimeout);
  }

  #write(ws, frame) {
    try {
      ws.send(JSON.stringify(frame));
    } catch {
      this.#drop(ws);
    }
  }

  // --- frames -------------------------------------------------------------

  #onFrame(ws, data) {
    if (ws !== this.#ws) return;
    this.#armWatchdog(ws);
    let f;
    try {
      f = JSON.parse(data);
    } catch {
      return; // not ours to answer; the server never sends this
    }
    const id = num(f.id);
    if (id) {
      const req = this.#inflight.get(id);
      if (!req) return; // a ping's pong, or an answer we stopped waiting for
      this.#inflight.delete(id);
      clearTimeout(req.timer);
      if (f.error) return req.reject(errorFromWire(f.error));
      if (f.subscribed) this.#onSubscribed(f.subscribed);
      const key = Object.keys(f).find((k) => k !== 'id');
      return req.resolve(f[key] ?? {});
    }
    if (f.message) this.#onMessage(messageFromWire(f.message));
    else if (f.typing) this.#onTyping(f.typing.room, f.typing.user, !!f.typing.active);
    else if (f.read) this.emit('read', { room: f.read.room, user: f.read.user, seq: num(f.read.seq) });
    else if (f.unread) {
      const u = f.unread;
      this.emit('unread', { room: u.room, headSeq: num(u.head_seq), readSeq: num(u.read_seq), unread: num(u.unread) });
    } else if (f.presence) {
      const p = { user: f.presence.user, online: !!f.presence.online, lastSeen: num(f.presence.last_seen) };
      this.#presence.set(p.user, p);
      this.emit('presence', p);
    } else if (f.room_online) this.emit('roomOnline', { room: f.room_online.room, online: num(f.room_online.online) });
  }

  // #call sends a request on ws and waits for its answer.
  #call(ws, body, timeout = this.#opts.requestTimeout) {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#inflight.delete(id);
        reject(new ParleyError('TIMEOUT', 'no answer in time'));
      }, timeout);
      this.#inflight.set(id, { resolve, reject, timer });
      this.#write(ws, { id: String(id), ...body });
    });
  }

  /**
   * Sends a request frame (e.g. {history: {...}}) once connected and
   * resolves with the answer's payload. Rejects with the server's error,
   * DISCONNECTED if the connection ends first, or TIMEOUT.
   */
  async request(body, timeout = this.#opts.requestTimeout) {
    const deadline = Date.now() + timeout;
    await this.#whenOpen(timeout);
    return this.#call(this.#ws, body, Math.max(1, deadline - Date.now()));
  }

  #whenOpen(timeout) {
    if (this.#state === 'open') return Promise.resolve();
    if (this.#state === 'closed' || this.#state === 'idle') return Promise.reject(new ParleyError('CLOSED', 'not connected'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#openWaiters.delete(ready);
        reject(new ParleyError('TIMEOUT', 'not connected in time'));
      }, timeout);
      const ready = () => { clearTimeout(timer); resolve(); };
      this.#openWaiters.add(ready);
    });
  }

  // --- rooms ----------------------------------------------------------------

  /**
   * Starts (or restarts) live delivery of a room's log as 'message' events.
   * With afterSeq, every entry after it comes first; without, delivery
   * starts after the room's head, or after the last seq delivered if the
   * room was subscribed before. After a reconnect the client resumes by
   * itself. Resolves with {headSeq}.
   */
  async subscribe(room, { afterSeq } = {}) {
    const r = this.#rooms.get(room) ?? { last: undefined, resyncing: false };
    if (afterSeq !== undefined) r.last = afterSeq;
    this.#rooms.set(room, r);
    const res = await this.#subscribeNow(room, r, () => this.request(this.#subscribeFrame(room, r)));
    return { headSeq: num(res.head_seq) };
  }

  /** Ends delivery of a room. */
  async unsubscribe(room) {
    if (!this.#rooms.delete(room)) return;
    if (this.#state === 'open') await this.request({ unsubscribe: { room } }).catch(() => {});
  }

  /** The last seq delivered of a room (undefined before its first subscription answer). */
  lastSeq(room) {
    return this.#rooms.get(room)?.last;
  }

  #subscribeFrame(room, r) {
    return { subscribe: r.last === undefined ? { room } : { room, after_seq: String(r.last) } };
  }

  async #subscribeNow(room, r, send) {
    r.resyncing = true;
    try {
      return await send();
    } catch (err) {
      r.resyncing = false;
      if (err.code === 'ROOM_NOT_FOUND' || err.code === 'INVALID_ARGUMENT') this.#rooms.delete(room);
      throw err;
    }
  }

  // #resubscribe resumes a room after its last delivered seq: after a
  // reconnect, or to fill a gap.
  #resubscribe(room) {
    const r = this.#rooms.get(room);
    if (!r || this.#state !== 'open') return;
    const ws = this.#ws;
    this.#subscribeNow(room, r, () => this.#call(ws, this.#subscribeFrame(room, r))).catch((err) => {
      if (err.code === 'DISCONNECTED' || err.code === 'CLOSED') return; // resumed on reconnect
      if (!this.#rooms.has(room)) return this.emit('roomError', { room, error: err });
      if (err.retryable) setTimeout(() => { if (this.#ws === ws) this.#resubscribe(room); }, this.#opts.reconnectDelay);
    });
  }

  #onSubscribed(s) {
    const r = this.#rooms.get(s.room);
    if (!r) return;
    r.resyncing = false;
    if (r.last === undefined) r.last = num(s.head_seq);
  }

  #onMessage(m) {
    const r = this.#rooms.get(m.room);
    if (!r || r.last === undefined || m.seq <= r.last) return; // not ours, or seen
    if (m.seq > r.last + 1) {
      // A gap: ask for the room again after the last seq we have, and
      // drop what arrives out of order until it answers.
      if (!r.resyncing) this.#resubscribe(m.room);
      return;
    }
    r.last = m.seq;
    this.#onTyping(m.room, m.sender, false);
    const p = this.#pending.get(m.clientMsgId);
    if (p && m.sender === this.#user && p.frame.room === m.room) {
      // The sender's own copy is as good as its ack.
      this.#settle(p, { room: m.room, clientMsgId: m.clientMsgId, seq: m.seq, sentAt: m.sentAt, duplicate: false });
    }
    this.emit('message', m);
  }

  /** One page of a room's log, in ascending seq order: {messages, hasMore}. */
  async history(room, { beforeSeq, afterSeq, limit } = {}) {
    const q = { room };
    if (beforeSeq !== undefined) q.before_seq = String(beforeSeq);
    if (afterSeq !== undefined) q.after_seq = String(afterSeq);
    if (limit) q.limit = limit;
    const page = await this.request({ history: q });
    return { messages: (page.messages ?? []).map(messageFromWire), hasMore: !!page.has_more };
  }

  /** One page of the user's rooms with head, read cursor, unread and last message. */
  async sync({ afterRoom, limit } = {}) {
    const q = {};
    if (afterRoom) q.after_room = afterRoom;
    if (limit) q.limit = limit;
    const list = await this.request({ sync: q });
    return { rooms: (list.rooms ?? []).map(summaryFromWire), next: list.next ?? '' };
  }

  /** Every room of the user, all pages of sync(). */
  async syncAll() {
    const rooms = [];
    let afterRoom = '';
    do {
      const page = await this.sync({ afterRoom, limit: 500 });
      rooms.push(...page.rooms);
      afterRoom = page.next;
    } while (afterRoom);
    return rooms;
  }

  /** Moves the user's read cursor of a room up to seq. */
  async markRead(room, seq) {
    await this.request({ mark_read: { room, seq: String(seq) } });
  }

  /**
   * Says the user types (or stopped). Call it on every keystroke: it says
   * "typing" at most every typingInterval, only when connected, and within
   * a budget of typingRate frames per second (burst typingBurst) for all
   * rooms together, so it never trips the server's typing rate limit. A
   * frame over budget waits for it, and the user's latest word in the room
   * replaces it meanwhile. A message sent to the room ends typing by itself.
   */
  typing(room, active = true) {
    if (this.#state !== 'open') return;
    clearTimeout(this.#typingLater.get(room));
    this.#typingLater.delete(room);
    const last = this.#typingSent.get(room);
    if (active ? last && Date.now() - last < this.#opts.typingInterval : !last) return;
    this.#typingSay(room, active);
  }

  #typingSay(room, active) {
    this.#typingLater.delete(room);
    if (this.#state !== 'open' || (!active && !this.#typingSent.has(room))) return;
    const wait = this.#typingWait();
    if (wait > 0) {
      this.#typingLater.set(room, setTimeout(() => this.#typingSay(room, active), wait));
      return;
    }
    this.#typingBudget.tokens -= 1;
    if (active) this.#typingSent.set(room, Date.now());
    else this.#typingSent.delete(room);
    this.#call(this.#ws, { typing: { room, active } }).catch(() => {}); // ephemeral
  }

  // #typingWait says how long until the bucket holds a whole token (ms).
  #typingWait() {
    const { typingRate: rate, typingBurst: burst } = this.#opts;
    const now = Date.now();
    const b = this.#typingBudget ?? { tokens: burst, at: now };
    b.tokens = Math.min(burst, b.tokens + ((now - b.at) / 1000) * rate);
    b.at = now;
    this.#typingBudget = b;
    return b.tokens >= 1 ? 0 : Math.ceil(((1 - b.tokens) / rate) * 1000);
  }

  // #typingDone forgets the user's typing in a room without a frame: the
  // message the user sent there ends it for the receivers.
  #typingDone(room) {
    clearTimeout(this.#typingLater.get(room));
    this.#typingLater.delete(room);
    this.#typingSent.delete(room);
  }

  /** Users typing in a room now. */
  typingUsers(room) {
    return [...(this.#typers.get(room)?.keys() ?? [])];
  }

  #onTyping(room, user, active) {
    const typers = this.#typers.get(room) ?? new Map();
    const was = typers.has(user);
    clearTimeout(typers.get(user));
    if (active) {
      typers.set(user, setTimeout(() => this.#onTyping(room, user, false), this.#opts.typingTimeout));
      this.#typers.set(room, typers);
    } else {
      typers.delete(user);
    }
    if (was !== active) this.emit('typing', { room, user, active });
  }

  /** A user's last known presence: {user, online, lastSeen}, or undefined. */
  presence(user) {
    return this.#presence.get(user);
  }

  // --- sending --------------------------------------------------------------

  /**
   * Sends a message. It is kept (across reconnects and, with storage,
   * page loads) and resent with the same client message id until the
   * server acknowledges it, so it is stored once. Resolves with the ack
   * {room, clientMsgId, seq, sentAt, duplicate}; rejects on an error that
   * retrying cannot mend (e.g. FORBIDDEN, MESSAGE_TOO_LARGE).
   */
  send(room, text, { replyToSeq, mentions, attachments } = {}) {
    const body = { text };
    if (attachments?.length) body.attachments = attachments;
    const frame = { room, body };
    if (replyToSeq) frame.reply_to_seq = String(replyToSeq);
    if (mentions?.length) frame.mentions = mentions;
    this.#typingDone(room);
    return this.#enqueue(frame, 'text');
  }

  /** Replaces the text of message seq (the user's own). */
  edit(room, seq, text) {
    return this.#enqueue({ room, ref_seq: String(seq), body: { text } }, 'edit');
  }

  /** Deletes message seq for everyone. */
  delete(room, seq) {
    return this.#enqueue({ room, ref_seq: String(seq) }, 'delete');
  }

  /** Adds (or with add false removes) the user's reaction to message seq. */
  react(room, seq, reaction, add = true) {
    return this.#enqueue({ room, ref_seq: String(seq), reaction }, add ? 'reaction_add' : 'reaction_remove');
  }

  /**
   * Sends not yet acknowledged, oldest first, optionally of one room:
   * [{room, clientMsgId, kind, text, refSeq, reaction, replyToSeq, createdAt}].
   */
  pending(room) {
    const out = [];
    for (const p of this.#pending.values()) {
      if (room === undefined || p.frame.room === room) out.push(pendingView(p));
    }
    return out;
  }

  #enqueue(frame, kind) {
    frame.client_msg_id = newClientMsgId();
    if (kind !== 'text') frame.kind = kindToWire(kind);
    const p = { frame, createdAt: Date.now(), attempts: 0, inflight: false, waiters: [] };
    const done = new Promise((resolve, reject) => p.waiters.push({ resolve, reject }));
    this.#pending.set(frame.client_msg_id, p);
    this.#pendingChanged(frame.room);
    this.#flush(p);
    return done;
  }

  #flush(p) {
    if (p.inflight || this.#state !== 'open' || !this.#pending.has(p.frame.client_msg_id)) return;
    p.inflight = true;
    p.attempts++;
    this.#call(this.#ws, { send: p.frame }, this.#opts.ackTimeout).then(
      (ack) => this.#settle(p, {
        room: ack.room, clientMsgId: ack.client_msg_id, seq: num(ack.seq), sentAt: num(ack.sent_at), duplicate: !!ack.duplicate,
      }),
      (err) => {
        p.inflight = false;
        if (!this.#pending.has(p.frame.client_msg_id)) return;
        // Flushed again once (re)connected.
        if (err.code === 'DISCONNECTED' || err.code === 'CLOSED') return;
        if (!err.retryable) return this.#fail(p, err);
        const delay = err.code === 'TIMEOUT' ? 0 : Math.min(this.#opts.maxReconnectDelay, this.#opts.reconnectDelay * 2 ** p.attempts);
        setTimeout(() => this.#flush(p), delay);
      },
    );
  }

  #settle(p, ack) {
    if (!this.#pending.delete(p.frame.client_msg_id)) return;
    for (const w of p.waiters) w.resolve(ack);
    this.#pendingChanged(p.frame.room);
    this.emit('ack', ack);
  }

  #fail(p, error) {
    this.#pending.delete(p.frame.client_msg_id);
    for (const w of p.waiters) w.reject(error);
    this.#pendingChanged(p.frame.room);
    this.emit('sendFailed', { ...pendingView(p), error });
  }

  #pendingChanged(room) {
    this.#savePending();
    this.emit('pending', { room });
  }

  // Pending sends are stored per user; a page load takes them up again
  // once the same user authenticates. Waiters do not survive: the 'ack'
  // and 'sendFailed' events tell the outcome.
  #storageKey() {
    return 'parley.pending.' + this.#user;
  }

  #savePending() {
    if (!this.#storage || !this.#user) return;
    const list = [...this.#pending.values()].map(({ frame, createdAt }) => ({ frame, createdAt }));
    try {
      if (list.length) this.#storage.setItem(this.#storageKey(), JSON.stringify(list));
      else this.#storage.removeItem(this.#storageKey());
    } catch {
      // storage full or disabled: pending sends still live in memory
    }
  }

  #restorePending() {
    let stored = [];
    try {
      stored = JSON.parse(this.#storage?.getItem(this.#storageKey()) ?? '[]');
    } catch {
      // unreadable: nothing to restore
    }
    for (const { frame, createdAt } of stored) {
      if (!this.#pending.has(frame.client_msg_id)) {
        this.#pending.set(frame.client_msg_id, { frame, createdAt, attempts: 0, inflight: false, waiters: [] });
      }
    }
    this.#savePending();
    for (const room of new Set(stored.map((s) => s.frame.room))) this.emit('pending', { room });
  }
}

function pendingView({ frame, createdAt }) {
  return {
    room: frame.room,
    clientMsgId: frame.client_msg_id,
    kind: kindFromWire(frame.kind),
    text: frame.body?.text ?? '',
    refSeq: num(frame.ref_seq),
    reaction: frame.reaction ?? '',
    replyToSeq: num(frame.reply_to_seq),
    createdAt,
  };
}

// ---------------------------------------------------------------------------

const REFERRING = new Set(['edit', 'delete', 'reaction_add', 'reaction_remove']);

/**
 * Timeline folds a room's log into displayable messages: edits, deletes
 * and reactions are applied to the message they refer to (ref_seq).
 * Entries may be added in any order (history pages going back, live ones
 * going forward, both overlapping): each seq counts once, and a message's
 * view is always the fold of its own references in seq order.
 */
export class Timeline {
  #items = new Map(); // seq -> message or membership/room entry
  #refs = new Map(); // target seq -> referring entries, ascending seq
  #seen = new Set();
  #views = new Map(); // seq -> folded view (cache)

  /** Adds entries; returns the seqs of items whose view changed. */
  add(entries) {
    const changed = new Set();
    for (const e of entries) {
      if (this.#seen.has(e.seq)) continue;
      this.#seen.add(e.seq);
      const target = REFERRING.has(e.kind) ? e.refSeq : e.seq;
      if (REFERRING.has(e.kind)) {
        const refs = this.#refs.get(target) ?? [];
        refs.push(e);
        refs.sort((a, b) => a.seq - b.seq);
        this.#refs.set(target, refs);
      } else {
        this.#items.set(e.seq, e);
      }
      this.#views.delete(target);
      if (this.#items.has(target)) changed.add(target);
    }
    return changed;
  }

  /** Whether an entry of this seq was added. */
  has(seq) {
    return this.#seen.has(seq);
  }

  /**
   * The folded view of item seq: the entry's fields plus edited, editedAt,
   * deleted and reactions [{emoji, users}]; undefined if not loaded.
   */
  get(seq) {
    const item = this.#items.get(seq);
    if (!item) return undefined;
    let view = this.#views.get(seq);
    if (!view) {
      view = fold(item, this.#refs.get(seq) ?? []);
      this.#views.set(seq, view);
    }
    return view;
  }

  /** Seqs of the items (messages and membership/room events), ascending. */
  seqs() {
    return [...this.#items.keys()].sort((a, b) => a - b);
  }

  /** The lowest seq added (where to page back from), or 0. */
  get oldest() {
    let min = 0;
    for (const s of this.#seen) if (!min || s < min) min = s;
    return min;
  }

  /** The highest seq added, or 0. */
  get newest() {
    let max = 0;
    for (const s of this.#seen) if (s > max) max = s;
    return max;
  }
}

function fold(item, refs) {
  const view = { ...item, edited: false, editedAt: 0, deleted: false, reactions: [] };
  const reactions = new Map(); // emoji -> Set(user)
  for (const r of refs) {
    if (view.deleted) break;
    switch (r.kind) {
      case 'edit':
        if (r.sender === item.sender) Object.assign(view, { text: r.text, attachments: r.attachments, edited: true, editedAt: r.sentAt });
        break;
      case 'delete':
        Object.assign(view, { deleted: true, text: '', attachments: [] });
        break;
      case 'reaction_add':
        if (!reactions.has(r.reaction)) reactions.set(r.reaction, new Set());
        reactions.get(r.reaction).add(r.sender);
        break;
      case 'reaction_remove':
        reactions.get(r.reaction)?.delete(r.sender);
        break;
    }
  }
  if (!view.deleted) {
    for (const [emoji, users] of reactions) if (users.size) view.reactions.push({ emoji, users: [...users] });
  }
  return view;
}

// ---------------------------------------------------------------------------

// camel turns the API's snake_case keys into camelCase, deeply.
function camel(v) {
  if (Array.isArray(v)) return v.map(camel);
  if (v === null || typeof v !== 'object') return v;
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k.replace(/_([a-z])/g, (_, c) => c.toUpperCase()), camel(x)]));
}

const REFRESH_MARGIN = 60_000; // refresh an access token this long before it expires

/**
 * ParleyApi calls the gateway's HTTP API and keeps the login session:
 * access tokens are refreshed before they expire, or when refused.
 * Answers are the API's JSON with camelCase keys; failures throw
 * ParleyError with the API's code and HTTP status.
 */
export class ParleyApi {
  #fetch;
  #base;
  #onSession;
  #refreshing = null;

  /**
   * @param {object} [options]
   * @param {string} [options.baseUrl] '' for the page's own origin
   * @param {typeof fetch} [options.fetch]
   * @param {object | null} [options.session] a session saved from onSession
   * @param {(session: object | null) => void} [options.onSession] called on every
   *   change of the session (login, refresh, logout, expiry) to save it
   */
  constructor({ baseUrl = '', fetch = globalThis.fetch?.bind(globalThis), session = null, onSession = () => {} } = {}) {
    this.#base = baseUrl;
    this.#fetch = fetch;
    this.#onSession = onSession;
    /** {user, accessToken, refreshToken, expiresAt, refreshExpiresAt} (times in ms), or null. */
    this.session = session;
  }

  #setSession(s) {
    this.session = s && { ...s, expiresAt: Date.parse(s.expiresAt), refreshExpiresAt: Date.parse(s.refreshExpiresAt) };
    this.#onSession(this.session);
    return this.session;
  }

  async #send(method, path, body, token) {
    const headers = {};
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (token) headers.Authorization = 'Bearer ' + token;
    let res;
    try {
      res = await this.#fetch(this.#base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (err) {
      throw new ParleyError('UNAVAILABLE', 'network: ' + err.message);
    }
    if (res.status === 204) return null;
    const data = await res.json().catch(() => null);
    if (!res.ok) throw new ParleyError(data?.error?.code ?? 'HTTP_' + res.status, data?.error?.message ?? res.statusText, res.status);
    return camel(data);
  }

  /** Creates an account and logs it in. */
  async register({ handle, password, displayName }) {
    const body = { handle, password };
    if (displayName) body.display_name = displayName;
    return this.#setSession(await this.#send('POST', '/api/v1/accounts', body));
  }

  async login({ handle, password }) {
    return this.#setSession(await this.#send('POST', '/api/v1/sessions', { handle, password }));
  }

  /** Ends the session on the server (best effort) and forgets it. */
  async logout() {
    if (this.session) await this.#authed('DELETE', '/api/v1/sessions/current').catch(() => {});
    this.#setSession(null);
  }

  /**
   * A valid access token, refreshed first if it expires within a minute
   * or refresh is true. Throws UNAUTHENTICATED when the session is over.
   */
  async token({ refresh = false } = {}) {
    if (!this.session) throw new ParleyError('UNAUTHENTICATED', 'not logged in', 401);
    if (refresh || this.session.expiresAt - Date.now() < REFRESH_MARGIN) await this.#refresh();
    return this.session.accessToken;
  }

  // One refresh at a time: refresh tokens are single use.
  #refresh() {
    this.#refreshing ??= (async () => {
      try {
        this.#setSession(await this.#send('POST', '/api/v1/sessions/refresh', { refresh_token: this.session.refreshToken }));
      } catch (err) {
        if (err.status === 401) this.#setSession(null);
        throw err;
      } finally {
        this.#refreshing = null;
      }
    })();
    return this.#refreshing;
  }

  // #authed calls with the access token, refreshing once if refused.
  async #authed(method, path, body) {
    try {
      return await this.#send(method, path, body, await this.token());
    } catch (err) {
      if (err.status !== 401 || !this.session) throw err;
      return this.#send(method, path, body, await this.token({ refresh: true }));
    }
  }

  /** The caller's profile {id, handle, displayName, createdAt}. */
  me() {
    return this.#authed('GET', '/api/v1/accounts/me');
  }

  user(id) {
    return this.#authed('GET', '/api/v1/users/' + encodeURIComponent(id));
  }

  /** Users whose handle starts with prefix (3+ characters): {users, next}. */
  findUsers(prefix, { after, limit } = {}) {
    return this.#authed('GET', '/api/v1/users' + query({ prefix, after, limit }));
  }

  /** {friends: [{user, since}], next} */
  friends({ after, limit } = {}) {
    return this.#authed('GET', '/api/v1/friends' + query({ after, limit }));
  }

  /** Requests the caller received: {requests: [{user, since}], next} */
  incomingRequests({ after, limit } = {}) {
    return this.#authed('GET', '/api/v1/friends/requests/incoming' + query({ after, limit }));
  }

  /** Requests the caller sent: {requests: [{user, since}], next} */
  outgoingRequests({ after, limit } = {}) {
    return this.#authed('GET', '/api/v1/friends/requests/outgoing' + query({ after, limit }));
  }

  requestFriend(user) {
    return this.#authed('POST', '/api/v1/friends/requests', { user });
  }

  acceptFriend(user) {
    return this.#authed('POST', `/api/v1/friends/requests/${encodeURIComponent(user)}/accept`);
  }

  declineFriend(user) {
    return this.#authed('POST', `/api/v1/friends/requests/${encodeURIComponent(user)}/decline`);
  }

  cancelFriendRequest(user) {
    return this.#authed('DELETE', '/api/v1/friends/requests/' + encodeURIComponent(user));
  }

  removeFriend(user) {
    return this.#authed('DELETE', '/api/v1/friends/' + encodeURIComponent(user));
  }

  /** Creates a group (or channel) owned by the caller: the room. */
  createRoom({ name, kind = 'group', members = [] }) {
    return this.#authed('POST', '/api/v1/rooms', { name, kind, members });
  }

  /** Finds or creates the caller's one-to-one room with user: the room. */
  direct(user) {
    return this.#authed('POST', '/api/v1/direct', { user });
  }

  room(id) {
    return this.#authed('GET', '/api/v1/rooms/' + encodeURIComponent(id));
  }

  /** {members: [{user, role, joinedAt}], next} */
  members(room, { after, limit } = {}) {
    return this.#authed('GET', `/api/v1/rooms/${encodeURIComponent(room)}/members` + query({ after, limit }));
  }

  /** How far members have read: {reads: [{user, seq}], next} */
  reads(room, { after, limit } = {}) {
    return this.#authed('GET', `/api/v1/rooms/${encodeURIComponent(room)}/reads` + query({ after, limit }));
  }
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? '?' + s : '';
}
