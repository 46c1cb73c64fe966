// A fake Parley gateway for SDK unit tests: a WebSocket class the client
// is given, and behind it a room log that follows the protocol of
// schemas/README.md (auth first, subscribe with after_seq resumes,
// client_msg_id dedup, pushed events). Tests steer it: drop connections,
// withhold acks, push raw frames.

export class FakeGateway {
  rooms = new Map(); // room -> [wire messages], seq = index + 1
  sockets = []; // every socket the client opened, oldest first
  tokens = new Set(['good']);
  silent = false; // answer nothing (a dead network)
  refuse = false; // close new connections before they open (server down)
  ackless = 0; // withhold this many acks (the message is still stored)
  failSends = []; // error codes to answer the next sends with, in order
  frames = []; // every frame received, with the socket index and time
  // The server's typing limit per user (--rate-typing, default 1/s, burst 5).
  typingLimit = { rate: 1, burst: 5 };
  typingRefused = 0; // typing frames answered RATE_LIMITED
  #typingBucket = null;

  constructor() {
    const gw = this;
    this.WebSocket = class FakeSocket {
      constructor(url, protocol) {
        this.url = url;
        this.protocol = protocol;
        this.closed = false;
        this.user = '';
        this.subs = new Set();
        gw.sockets.push(this);
        setTimeout(() => {
          if (this.closed) return;
          if (!gw.refuse) return this.onopen?.({});
          this.closed = true;
          this.onclose?.({ code: 1006 });
        }, 0);
      }

      send(data) {
        if (this.closed) throw new Error('send on a closed socket');
        gw.receive(this, JSON.parse(data));
      }

      close(code) {
        this.closed = true;
        this.closeCode = code;
      }
    };
  }

  /** The socket the client uses now. */
  get current() {
    return this.sockets.at(-1);
  }

  /** Server-side close: the client sees a close event. */
  drop(code = 1006) {
    const ws = this.current;
    ws.closed = true;
    ws.onclose?.({ code });
  }

  push(ws, frame) {
    if (!ws.closed && !this.silent) ws.onmessage?.({ data: JSON.stringify(frame) });
  }

  log(room) {
    if (!this.rooms.has(room)) this.rooms.set(room, []);
    return this.rooms.get(room);
  }

  /** Appends a message as user (as if sent by another client) and fans it out. */
  append(room, sender, text, clientMsgId = 'srv-' + Math.random()) {
    const log = this.log(room);
    const m = { room, seq: String(log.length + 1), sender, client_msg_id: clientMsgId, sent_at: String(Date.now()), body: { text } };
    log.push(m);
    for (const ws of this.sockets) if (ws.subs.has(room)) this.push(ws, { message: m });
    return m;
  }

  receive(ws, f) {
    this.frames.push({ socket: this.sockets.indexOf(ws), frame: f, at: Date.now() });
    if (this.silent) return;
    const answer = (body) => this.push(ws, { id: f.id, ...body });
    const fail = (code, message = code) => answer({ error: { code: 'ERROR_CODE_' + code, message } });
    if (f.auth) {
      if (!this.tokens.has(f.auth.token)) return fail('AUTH_FAILED');
      ws.user = 'me';
      return answer({ authenticated: { user_id: 'me', session_id: 's1', server_time: String(Date.now()) } });
    }
    if (!ws.user) return fail('UNAUTHENTICATED');
    if (f.subscribe) {
      const { room } = f.subscribe;
      const log = this.log(room);
      ws.subs.add(room);
      answer({ subscribed: { room, head_seq: String(log.length) } });
      if (f.subscribe.after_seq !== undefined) {
        for (const m of log.slice(Number(f.subscribe.after_seq))) this.push(ws, { message: m });
      }
      return;
    }
    if (f.send) {
      const s = f.send;
      if (this.failSends.length) return fail(this.failSends.shift());
      const log = this.log(s.room);
      let m = log.find((x) => x.sender === ws.user && x.client_msg_id === s.client_msg_id);
      const duplicate = !!m;
      if (!m) {
        m = { room: s.room, seq: String(log.length + 1), sender: ws.user, client_msg_id: s.client_msg_id, sent_at: String(Date.now()), body: s.body };
        for (const k of ['kind', 'ref_seq', 'reaction', 'reply_to_seq']) if (s[k] !== undefined) m[k] = s[k];
        log.push(m);
        for (const other of this.sockets) if (other.subs.has(s.room)) this.push(other, { message: m });
      }
      if (this.ackless > 0) {
        this.ackless--;
        return;
      }
      return answer({ ack: { room: s.room, client_msg_id: s.client_msg_id, seq: m.seq, sent_at: m.sent_at, duplicate } });
    }
    if (f.history) {
      const log = this.log(f.history.room);
      const before = f.history.before_seq ? Number(f.history.before_seq) - 1 : log.length;
      const limit = f.history.limit || 50;
      const from = Math.max(0, before - limit);
      return answer({ history: { room: f.history.room, messages: log.slice(from, before), has_more: from > 0 } });
    }
    if (f.ping) return answer({ pong: { client_time: f.ping.client_time, server_time: String(Date.now()) } });
    if (f.typing && !this.#typingAllowed()) return this.typingRefused++, fail('RATE_LIMITED', 'typing: resend every 3 s at most');
    if (f.typing || f.mark_read) return answer({ ok: {} });
    if (f.unsubscribe) {
      ws.subs.delete(f.unsubscribe.room);
      return answer({ unsubscribed: { room: f.unsubscribe.room } });
    }
    fail('UNKNOWN_FRAME');
  }

  // #typingAllowed is the server's token bucket for typing frames.
  #typingAllowed() {
    const { rate, burst } = this.typingLimit;
    const now = Date.now();
    const b = this.#typingBucket ?? { tokens: burst, at: now };
    b.tokens = Math.min(burst, b.tokens + ((now - b.at) / 1000) * rate);
    b.at = now;
    this.#typingBucket = b;
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }
}

/** Resolves once cond() is true, polling; rejects after timeout ms. */
export async function waitFor(cond, timeout = 2000, what = 'condition') {
  const end = Date.now() + timeout;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting for ' + what);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** A Storage backed by a Map. */
export class MemoryStorage {
  #m = new Map();
  getItem(k) { return this.#m.has(k) ? this.#m.get(k) : null; }
  setItem(k, v) { this.#m.set(k, String(v)); }
  removeItem(k) { this.#m.delete(k); }
}
