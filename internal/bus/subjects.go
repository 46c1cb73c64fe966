// Package bus wires Parley to NATS and JetStream: subjects, partitioning,
// stream and durable consumer definitions, waiting for them, and Direct
// Get helpers. (Id rules are the protocol's,
// pkg/protocol; the embedded server is internal/natsembed.)
package bus

import (
	"fmt"
	"strconv"
	"strings"
)

// StreamMsg is the stream of sequenced room messages: the source of truth.
const StreamMsg = "CHAT_MSG"

// Message headers Parley sets on bus messages.
const (
	HeaderSeq    = "Parley-Seq"    // a room message's dense per-room seq
	HeaderLeaves = "Parley-Leaves" // users a membership event removes from the room
)

// DefaultPartitions is the number of processor partitions rooms hash into.
const DefaultPartitions = 64

// Partition maps a room to its processor partition: FNV-1a 32-bit of the
// room id mod n, the same function as the NATS server's partition() subject
// mapping, so every component (and the server) agrees.
func Partition(room string, n int) int {
	const offset, prime = 2166136261, 16777619
	h := uint32(offset)
	for i := 0; i < len(room); i++ {
		h ^= uint32(room[i])
		h *= prime
	}
	return int(h % uint32(n))
}

// MsgSubject is the CHAT_MSG subject holding a room's sequenced messages.
// It names the room only, so the partition count is not part of any
// stored key.
func MsgSubject(room string) string { return "chat.msg." + room }

// SendSubject is where a gateway sends a client message of room (core NATS
// request/reply) to the processor owning the room's partition.
func SendSubject(room string, partitions int) string {
	return "parley.send." + strconv.Itoa(Partition(room, partitions)) + "." + room
}

// SendPartition matches every SendSubject of partition p; its owner
// subscribes to it.
func SendPartition(p int) string { return fmt.Sprintf("parley.send.%d.*", p) }

// RoomFromSubject returns the last token of a chat.msg or parley.send subject.
func RoomFromSubject(subject string) string {
	return subject[strings.LastIndexByte(subject, '.')+1:]
}

// ContactsSubject carries "<a> <b>" when two users start following each
// other's presence (a friendship or a direct room began); every gateway
// listens.
const ContactsSubject = "parley.contacts"

// Service subjects (request/reply, NATS micro services).
const (
	HistoryQuerySubject = "parley.history.query"
)
