package bus

import "strings"

// Core NATS subjects of ephemeral signals: never stored, at most once.
// Room and user ids are single subject tokens (ValidRoomID, ValidUserID).

// RoomSignals carries a room's typing, read receipt and online count
// frames (encoded parley.v1.ServerFrame) to the gateways with subscribers.
func RoomSignals(room string) string { return "room." + room + ".sig" }

// RoomSubjects matches both of a room's core subjects, so a gateway needs
// one subscription per room: room.<room>.ev, where CHAT_MSG republishes the
// room's stored messages (MsgStreamConfig), and RoomSignals.
func RoomSubjects(room string) string { return "room." + room + ".*" }

// IsRoomSignal tells a RoomSignals subject from a room.<room>.ev one.
func IsRoomSignal(subject string) bool { return strings.HasSuffix(subject, ".sig") }

// UserEvents carries frames for every device of one user (encoded
// parley.v1.ServerFrame); a gateway subscribes while the user has a
// connection on it.
func UserEvents(user string) string { return "user." + user + ".ev" }

// PresenceEvents carries a user's online and offline transitions (encoded
// parley.v1.PresenceEvent).
func PresenceEvents(user string) string { return "presence." + user }

// Notifications carries parley.v1.Notification for a push bridge: messages
// for a user none of whose devices is online.
func Notifications(user string) string { return "notify." + user }

// Headers of signal messages.
const (
	// HeaderSession names the session a user event comes from; that
	// session already knows and is skipped.
	HeaderSession = "Parley-Session"
	// HeaderGateway names the gateway an online count comes from.
	HeaderGateway = "Parley-Gateway"
)
