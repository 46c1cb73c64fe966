// Package verify checks what the bench's receivers were delivered against
// what its senders had acknowledged: every member must see each of a room's
// messages exactly once and in seq order (design invariants 2 and 4), and
// the server must store each client message once.
//
// # Recording
//
// Senders report through a Room: Sent once per new message (not per retry)
// and Acked with the seq of its ack. Receivers report through a Stream, one
// per (receiver, room), opened with the first seq the receiver must get:
// Subscribed.head_seq+1 for a live subscription, 1 for a member of a fresh
// room, or 0 to start at whatever arrives first. A reconnecting client keeps
// its Stream, so a resume that replays or skips messages shows up.
//
// Per delivery a Stream keeps O(1) state on the in-order path: the highest
// seq delivered (top) and the list of holes, ranges of seqs below top not
// delivered yet. A seq above top+1 opens a hole (a Gap); a seq inside a
// hole fills it (Reordered: it came after a later one); any other seq at or
// below top was delivered before (Duplicated). A seq below the stream's
// start also counts as Reordered. Memory is about 200 bytes per stream plus
// 16 bytes per open hole, so 50,000 receivers × 1 room or 10,000 × 10 rooms
// take tens of MiB, and a clean run keeps no holes at all.
//
// # Stored twice
//
// A client message the server stores twice (a retry it failed to recognise)
// gets two seqs, and each copy arrives in order: the seq checks cannot see
// it. So every delivery's (sender, client_msg_id) is also looked up in its
// room: one map per room and worker, shared by the worker's receivers
// there, from each client message to the seq it first came with. One
// arriving under another seq is stored twice, counted once per room
// however many receivers see it. That costs about 100 bytes per message
// per room a worker has members in, not per receiver.
//
// # Lost, across processes
//
// Seqs are dense per room, so once a room's highest acked seq is M, every
// seq up to M exists and every member whose stream starts at or below it
// must receive it. Lost counts, over all streams, the seqs in [start, M]
// never delivered: the stream's holes plus the tail between its top and M.
// That is stricter than "acked and not delivered": it also catches a stored
// message whose own ack was lost, for example when a gateway dies.
//
// Senders and receivers may live in different worker processes, so no
// worker knows M for sure. Each worker therefore reports a Summary: per room
// its sent and acked counts, its highest acked seq, its receivers' counters,
// the receivers grouped by top and by hole (in a clean run one entry per
// room), and the client messages stored twice (in a clean run none). The
// coordinator merges the Summaries — sums, maxima, and unions of those
// groups and messages — and only then computes Lost, with the room's M over
// all workers. Take summaries after the run has drained (no deliveries for a
// few seconds), or messages still in flight count as lost.
package verify
