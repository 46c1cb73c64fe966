package processor

import (
	"fmt"
	"slices"
	"testing"
)

// The assignment is balanced (no member above its fair share), the same
// whatever order the members are listed in, and moves few partitions
// when a member joins.
func TestAssignBalancedAndStable(t *testing.T) {
	const parts = 64
	members := []string{"a1f3", "9c2e", "77b0"}
	before := assign(parts, members)
	load := map[string]int{}
	for _, m := range before {
		load[m]++
	}
	for m, n := range load {
		if n > (parts+len(members)-1)/len(members) {
			t.Fatalf("%s holds %d of %d partitions: %v", m, n, parts, load)
		}
	}
	if len(load) != len(members) {
		t.Fatalf("not every member holds partitions: %v", load)
	}
	if again := assign(parts, []string{"77b0", "a1f3", "9c2e"}); !slices.Equal(before, again) {
		t.Fatal("the assignment depends on the order of the members")
	}
	after := assign(parts, append(members, "d00d"))
	moved := 0
	for p := range before {
		if before[p] != after[p] {
			moved++
		}
	}
	// A fourth member takes a quarter; bounded load may move a few more.
	if moved > parts/2 {
		t.Fatalf("%d of %d partitions moved when a fourth member joined", moved, parts)
	}
}

func TestAssignOneMemberHoldsAll(t *testing.T) {
	for _, owner := range assign(8, []string{"solo"}) {
		if owner != "solo" {
			t.Fatal(fmt.Sprint("partition assigned to ", owner))
		}
	}
}
