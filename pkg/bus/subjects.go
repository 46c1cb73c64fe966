// Package bus wires Parley to NATS and JetStream: subjects, partitioning,
// stream definitions and the embedded server.
package bus

import (
	"fmt"
	"strconv"
	"strings"
)

// Stream names.
const (
	StreamIn  = "CHAT_IN"  // client messages waiting for the processor (work queue)
	StreamMsg = "CHAT_MSG" // sequenced room messages (the source of truth)
)

// Message headers Parley sets on bus messages.
const (
	HeaderSeq    = "Parley-Seq"    // a room message's dense per-room seq
	HeaderLeaves = "Parley-Leaves" // users a membership event removes from the room
)

// DefaultPartitions is the number of processor partitions rooms hash into.
const DefaultPartitions = 64

// MaxRoomIDLen bounds room ids, which appear as NATS subject tokens.
const MaxRoomIDLen = 64

// ValidRoomID reports whether id can be a room id: 1..64 characters of
// [A-Za-z0-9_-], so it is always a single, literal NATS subject token.
func ValidRoomID(id string) bool { return validToken(id) }

// ValidUserID reports whether id can be a user id; user ids appear in
// subjects too (presence.<id>, notify.<id>), so the same rule applies.
func ValidUserID(id string) bool { return validToken(id) }

func validToken(id string) bool {
	if len(id) == 0 || len(id) > MaxRoomIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

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

// Subjects computes the subjects of a deployment with a given partition count.
type Subjects struct {
	Partitions int
}

// In is the CHAT_IN subject a gateway publishes a room's messages to.
func (s Subjects) In(room string) string {
	return "chat.in." + strconv.Itoa(Partition(room, s.Partitions)) + "." + room
}

// InPartition is the CHAT_IN filter of one processor partition.
func (s Subjects) InPartition(p int) string { return fmt.Sprintf("chat.in.%d.>", p) }

// Msg is the CHAT_MSG subject holding a room's sequenced messages.
func (s Subjects) Msg(room string) string {
	return "chat.msg." + strconv.Itoa(Partition(room, s.Partitions)) + "." + room
}

// RoomFromSubject returns the last token of a chat.in/chat.msg subject.
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
