// TypeScript declarations of parley.js, the Parley JavaScript SDK.

/** The WebSocket subprotocol the client speaks. */
export const SUBPROTOCOL: 'parley.v1.json';

/**
 * Error codes: the server's (schemas/README.md, without the ERROR_CODE_
 * prefix; the HTTP API adds its own such as INVALID_CREDENTIALS), and the
 * SDK's: DISCONNECTED (the connection ended before the answer), TIMEOUT,
 * CLOSED (the client is closed).
 */
export class ParleyError extends Error {
  constructor(code: string, message?: string, status?: number);
  readonly code: string;
  /** The HTTP status for API errors, else 0. */
  readonly status: number;
  /** Whether the same request may succeed later. */
  readonly retryable: boolean;
}

export type MessageKind =
  | 'text' | 'edit' | 'delete' | 'reaction_add' | 'reaction_remove'
  | 'member_joined' | 'member_left' | 'member_removed' | 'member_role_changed' | 'room_renamed';

export const KINDS: readonly MessageKind[];

export interface Attachment {
  kind: string;
  url: string;
  mime_type?: string;
  size?: string;
  name?: string;
  width?: number;
  height?: number;
  duration_ms?: number;
}

/** One entry of a room's log. Seqs are dense per room: 1, 2, 3, … */
export interface Message {
  room: string;
  seq: number;
  sender: string;
  clientMsgId: string;
  /** Unix milliseconds when the message was sequenced. */
  sentAt: number;
  kind: MessageKind;
  text: string;
  attachments: Attachment[];
  /** The message an edit, delete or reaction refers to (else 0). */
  refSeq: number;
  reaction: string;
  replyToSeq: number;
  mentions: string[];
  /** Membership changes: the members concerned. */
  targetUsers: string[];
  role: string;
}

export function messageFromWire(m: object): Message;

/** A new client message id. */
export function newClientMsgId(): string;

export interface Ack {
  room: string;
  clientMsgId: string;
  seq: number;
  sentAt: number;
  /** The id was seen before: seq is the original message's. */
  duplicate: boolean;
}

export interface PendingSend {
  room: string;
  clientMsgId: string;
  kind: MessageKind;
  text: string;
  refSeq: number;
  reaction: string;
  replyToSeq: number;
  createdAt: number;
}

export interface RoomSummary {
  room: string;
  kind: 'group' | 'channel' | 'direct' | string;
  name: string;
  role: string;
  headSeq: number;
  readSeq: number;
  unread: number;
  lastMessage: Message | null;
}

export type ConnectionState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface ClientEvents {
  /** The connection changed state; delay (ms) is the wait before the next attempt. */
  state: { state: ConnectionState; attempt?: number; delay?: number; resumed?: boolean; error?: ParleyError };
  /** A room log entry, in seq order per room, each exactly once. */
  message: Message;
  /** Another user started or stopped typing (expires by itself). */
  typing: { room: string; user: string; active: boolean };
  /** A member read a room up to seq (small rooms). */
  read: { room: string; user: string; seq: number };
  /** The user's unread count of a room changed on another device. */
  unread: { room: string; headSeq: number; readSeq: number; unread: number };
  presence: { user: string; online: boolean; lastSeen: number };
  /** How many members of a large room are online. */
  roomOnline: { room: string; online: number };
  /** A send was acknowledged (also for sends restored from storage). */
  ack: Ack;
  /** The pending sends of a room changed. */
  pending: { room: string };
  /** A send was refused for good. */
  sendFailed: PendingSend & { error: ParleyError };
  /** A room could not be resumed (e.g. the user was removed); it is dropped. */
  roomError: { room: string; error: ParleyError };
  /** The token was refused twice; the client is closed. */
  authFailed: ParleyError;
}

/** Storage of unacknowledged sends (localStorage fits). */
export interface PendingStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export interface ClientOptions {
  /** ws(s)://host/ws; by default /ws on the page's host. */
  url?: string;
  /** An access token, or a function giving one on each (re)connect; refresh is true after a refusal. */
  token: string | ((o: { refresh: boolean }) => string | Promise<string>);
  WebSocket?: typeof WebSocket;
  /** Default localStorage where there is one; null keeps sends in memory only. */
  storage?: PendingStorage | null;
  /** Ping after this long without a frame (ms, default 20000). */
  heartbeatInterval?: number;
  /** Then give the connection up after this long (ms, default 10000). */
  heartbeatTimeout?: number;
  /** A request, waiting for the connection included (ms, default 15000). */
  requestTimeout?: number;
  /** Resend an unacknowledged message after this long (ms, default 10000). */
  ackTimeout?: number;
  /** First reconnect delay (ms, default 500), doubling up to maxReconnectDelay (default 30000), with jitter. */
  reconnectDelay?: number;
  maxReconnectDelay?: number;
  /** A connection up this long resets the backoff (ms, default 30000). */
  stableAfter?: number;
  /** Resend typing this often while the user types (ms, default 3000). */
  typingInterval?: number;
  /** Forget another user's typing after this long (ms, default 6000). */
  typingTimeout?: number;
  /** Typing frames per second, all rooms together (default 0.5: half the server's limit). */
  typingRate?: number;
  /** Typing frames at once (default 2: under the server's burst). */
  typingBurst?: number;
}

export class ParleyClient {
  constructor(options: ClientOptions);
  readonly state: ConnectionState;
  /** The authenticated user's id ('' before the first authentication). */
  readonly user: string;

  on<K extends keyof ClientEvents>(type: K, fn: (e: ClientEvents[K]) => void): () => void;
  off<K extends keyof ClientEvents>(type: K, fn: (e: ClientEvents[K]) => void): void;

  /** Connects and keeps connecting; resolves once authenticated. */
  connect(): Promise<void>;
  /** Closes for good; pending sends stay stored. */
  close(): void;
  /** Sends a raw request frame body (e.g. {history: {...}}) once connected; resolves with the answer's payload. */
  request(body: object, timeout?: number): Promise<any>;

  /** Starts live delivery of a room; resumes by itself after reconnects. */
  subscribe(room: string, options?: { afterSeq?: number }): Promise<{ headSeq: number }>;
  unsubscribe(room: string): Promise<void>;
  /** The last seq delivered of a room. */
  lastSeq(room: string): number | undefined;
  /** A page of a room's log in ascending seq order. */
  history(room: string, options?: { beforeSeq?: number; afterSeq?: number; limit?: number }): Promise<{ messages: Message[]; hasMore: boolean }>;
  sync(options?: { afterRoom?: string; limit?: number }): Promise<{ rooms: RoomSummary[]; next: string }>;
  syncAll(): Promise<RoomSummary[]>;
  markRead(room: string, seq: number): Promise<void>;
  /** Call on every keystroke; throttled to stay within the server's typing rate limit. */
  typing(room: string, active?: boolean): void;
  typingUsers(room: string): string[];
  presence(user: string): { user: string; online: boolean; lastSeen: number } | undefined;

  /** Sends until acknowledged (same client message id on every attempt). */
  send(room: string, text: string, options?: { replyToSeq?: number; mentions?: string[]; attachments?: Attachment[] }): Promise<Ack>;
  edit(room: string, seq: number, text: string): Promise<Ack>;
  delete(room: string, seq: number): Promise<Ack>;
  react(room: string, seq: number, reaction: string, add?: boolean): Promise<Ack>;
  pending(room?: string): PendingSend[];
}

/** A message with its edits, delete and reactions applied. */
export interface MessageView extends Message {
  edited: boolean;
  editedAt: number;
  deleted: boolean;
  reactions: { emoji: string; users: string[] }[];
}

/** Folds a room's log into displayable messages; entries may come in any order. */
export class Timeline {
  /** Adds entries; returns the seqs of items whose view changed. */
  add(entries: Message[]): Set<number>;
  has(seq: number): boolean;
  get(seq: number): MessageView | undefined;
  /** Seqs of messages and membership/room events, ascending. */
  seqs(): number[];
  readonly oldest: number;
  readonly newest: number;
}

export interface Profile {
  id: string;
  handle: string;
  displayName: string;
  createdAt: string;
}

export interface Session {
  user: Profile;
  accessToken: string;
  refreshToken: string;
  /** Unix milliseconds. */
  expiresAt: number;
  refreshExpiresAt: number;
}

export interface Entry {
  user: Profile;
  since: string;
}

export interface Room {
  id: string;
  kind: 'group' | 'channel' | 'direct';
  name: string;
  createdBy: string;
  createdAt: string;
  role?: 'owner' | 'admin' | 'member';
}

interface Page {
  after?: string;
  limit?: number;
}

export class ParleyApi {
  constructor(options?: {
    baseUrl?: string;
    fetch?: typeof fetch;
    session?: Session | null;
    onSession?: (session: Session | null) => void;
  });
  session: Session | null;

  register(a: { handle: string; password: string; displayName?: string }): Promise<Session>;
  login(a: { handle: string; password: string }): Promise<Session>;
  logout(): Promise<void>;
  /** A valid access token, refreshed when it expires within a minute or refresh is set. */
  token(options?: { refresh?: boolean }): Promise<string>;

  me(): Promise<Profile>;
  user(id: string): Promise<Profile>;
  findUsers(prefix: string, page?: Page): Promise<{ users: Profile[]; next?: string }>;

  friends(page?: Page): Promise<{ friends: Entry[]; next?: string }>;
  incomingRequests(page?: Page): Promise<{ requests: Entry[]; next?: string }>;
  outgoingRequests(page?: Page): Promise<{ requests: Entry[]; next?: string }>;
  requestFriend(user: string): Promise<Entry>;
  acceptFriend(user: string): Promise<Entry>;
  declineFriend(user: string): Promise<null>;
  cancelFriendRequest(user: string): Promise<null>;
  removeFriend(user: string): Promise<null>;

  createRoom(a: { name: string; kind?: 'group' | 'channel'; members?: string[] }): Promise<Room>;
  direct(user: string): Promise<Room>;
  room(id: string): Promise<Room>;
  members(room: string, page?: Page): Promise<{ members: { user: string; role: string; joinedAt: string }[]; next?: string }>;
  reads(room: string, page?: Page): Promise<{ reads: { user: string; seq: number }[]; next?: string }>;
}
