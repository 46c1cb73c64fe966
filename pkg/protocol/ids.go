package protocol

// MaxIDLen bounds room and user ids, which appear as NATS subject tokens.
const MaxIDLen = 64

// ValidRoomID reports whether id can be a room id: 1..64 characters of
// [A-Za-z0-9_-], so it is always a single, literal NATS subject token.
func ValidRoomID(id string) bool { return validToken(id) }

// ValidUserID reports whether id can be a user id; user ids appear in
// subjects too (presence.<id>, notify.<id>), so the same rule applies.
func ValidUserID(id string) bool { return validToken(id) }

func validToken(id string) bool {
	if len(id) == 0 || len(id) > MaxIDLen {
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
