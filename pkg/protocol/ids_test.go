package protocol

import (
	"strings"
	"testing"
)

// Ids are single literal NATS subject tokens: no dots, wildcards, spaces
// or other bytes outside [A-Za-z0-9_-], and 1..MaxIDLen long.
func TestIDRules(t *testing.T) {
	for _, id := range []string{"r1", "alice", "A-b_9", strings.Repeat("x", MaxIDLen)} {
		if !ValidRoomID(id) || !ValidUserID(id) {
			t.Errorf("%q refused", id)
		}
	}
	for _, id := range []string{"", "a.b", "r>", "r*", "with space", "é", strings.Repeat("x", MaxIDLen+1)} {
		if ValidRoomID(id) || ValidUserID(id) {
			t.Errorf("%q accepted", id)
		}
	}
}
