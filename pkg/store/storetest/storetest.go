// Package storetest is the conformance suite of store.Store: every backend
// runs it unchanged from its own tests,
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { ... })
//	}
//
// It relies only on the documented contract, never on how a backend lays
// out its data. Timestamps are UTC with millisecond precision, which every
// backend can store exactly.
package storetest

import (
	"testing"

	"github.com/parley-chat/parley/pkg/store"
)

// Run runs every conformance test as a subtest. open must return a new,
// empty store for its t and close it when t ends (t.Cleanup); each subtest
// calls it once.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, st store.Store)
	}{
		{"HistoryEmpty", testHistoryEmpty},
		{"HistoryBounds", testHistoryBounds},
		{"HistoryRoomsIsolated", testHistoryRoomsIsolated},
		{"HistoryReplay", testHistoryReplay},
		{"HistoryHeadMonotonic", testHistoryHeadMonotonic},
		{"HistoryPaging", testHistoryPaging},
		{"HistoryConcurrentAppends", testHistoryConcurrentAppends},
		{"Rooms", testRooms},
		{"RenameRoom", testRenameRoom},
		{"Members", testMembers},
		{"MembersPaging", testMembersPaging},
		{"UserRooms", testUserRooms},
		{"Accounts", testAccounts},
		{"Reads", testReads},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}
