package verify

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// Kind is a kind of delivery anomaly. Duplicated, Reordered and Gap are
// counted per receiver; StoredTwice per room and client message.
type Kind int

const (
	// Duplicated: a seq delivered again to the same receiver.
	Duplicated Kind = iota
	// Reordered: a seq delivered after a higher one (filling a gap), or one
	// below the seq the stream started at.
	Reordered
	// Gap: a seq skipping past the next expected one. The skipped seqs are
	// lost unless they arrive later (as Reordered).
	Gap
	// StoredTwice: a client message (sender, client_msg_id) delivered under
	// a second seq: the server stored it twice.
	StoredTwice
	numKinds
)

var kindNames = [numKinds]string{"duplicated", "reordered", "gap", "stored_twice"}

func (k Kind) String() string {
	if k < 0 || k >= numKinds {
		return fmt.Sprintf("Kind(%d)", int(k))
	}
	return kindNames[k]
}

// MarshalText writes the kind's name, keeping summaries readable.
func (k Kind) MarshalText() ([]byte, error) {
	if k < 0 || k >= numKinds {
		return nil, fmt.Errorf("verify: unknown anomaly kind %d", int(k))
	}
	return []byte(kindNames[k]), nil
}

// UnmarshalText reads a kind's name.
func (k *Kind) UnmarshalText(b []byte) error {
	for i, n := range kindNames {
		if n == string(b) {
			*k = Kind(i)
			return nil
		}
	}
	return fmt.Errorf("verify: unknown anomaly kind %q", b)
}

// Anomaly describes one anomalous delivery, for finding it in server logs.
type Anomaly struct {
	Kind     Kind   `json:"kind"`
	Receiver string `json:"receiver"`
	Room     string `json:"room"`
	Seq      uint64 `json:"seq"`
	Top      uint64 `json:"top"` // highest seq the receiver had before
	Sender   string `json:"sender,omitempty"`
	MsgID    string `json:"client_msg_id"`
	// First is, for StoredTwice, the seq the message was first delivered at.
	First uint64 `json:"first_seq,omitempty"`
}

// MaxExamples is how many anomalies a Summary describes in detail.
const MaxExamples = 20

// examples keeps the first MaxExamples anomalies.
type examples struct {
	mu   sync.Mutex
	list []Anomaly
}

func (e *examples) add(a Anomaly) {
	e.mu.Lock()
	if len(e.list) < MaxExamples {
		e.list = append(e.list, a)
	}
	e.mu.Unlock()
}

// liveCounters are the worker's running totals, readable at any time.
type liveCounters struct {
	anomalies [numKinds]atomic.Uint64
	missing   atomic.Int64
}

// Live is a running view of a Verifier's anomalies, for progress output.
type Live struct {
	Duplicated, Reordered, Gaps uint64
	// Missing is the number of seqs receivers have skipped and not (yet)
	// received: an early view of Lost that ignores receivers lagging behind.
	Missing uint64
}

// Live returns the running totals.
func (v *Verifier) Live() Live {
	return Live{
		Duplicated: v.live.anomalies[Duplicated].Load(),
		Reordered:  v.live.anomalies[Reordered].Load(),
		Gaps:       v.live.anomalies[Gap].Load(),
		Missing:    uint64(max(v.live.missing.Load(), 0)),
	}
}
