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

// UserEvents carries frames for the devices of users connected to one
// gateway (encoded parley.v1.ServerFrame, header HeaderUser naming the
// user). A publisher finds a user's gateways in presence, so a gateway
// needs one subscription for all its users rather than one per user.
func UserEvents(gateway string) string { return "parley.gw." + gateway + ".users" }

// PresenceEvents carries a user's online and offline transitions (encoded
// parley.v1.PresenceEvent).
func PresenceEvents(user string) string { return "presence." + user }

// Notifications carries parley.v1.Notification for a push bridge: messages
// for a user none of whose devices is online.
func Notifications(user string) string { return "notify." + user }

// Headers of signal messages.
const (
	// HeaderUser names the user a UserEvents frame is for.
	HeaderUser = "Parley-User"
	// HeaderGateway names the gateway an online count comes from.
	HeaderGateway = "Parley-Gateway"
)
