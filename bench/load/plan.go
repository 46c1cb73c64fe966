package load

import "time"

// Plan is one worker's share of a run: the simulated users it connects and
// how. It travels as JSON from the coordinator.
type Plan struct {
	Worker  int          `json:"worker"`
	URLs    []string     `json:"urls"` // gateway WebSocket URLs
	API     string       `json:"api"`  // HTTP API base, for tokens
	Clients []ClientPlan `json:"clients"`
	// BodySize is the length of every message body in bytes.
	BodySize int `json:"body_size"`
	// EventBuffer is how many pushed frames a connection buffers unread.
	EventBuffer int `json:"event_buffer"`
	// DialConcurrency bounds connection attempts in flight, reconnects
	// included.
	DialConcurrency int `json:"dial_concurrency"`
	// Fanout records, for every message delivered, when its last receiver
	// in this worker got it (see Report.Fanout). Meant for runs with few
	// messages to many receivers.
	Fanout bool `json:"fanout,omitempty"`
}

// ClientPlan is one simulated user: one connection, subscribed to Rooms.
type ClientPlan struct {
	User   string   `json:"user"`
	Rooms  []string `json:"rooms"`
	URL    int      `json:"url"`    // index into Plan.URLs
	Source string   `json:"source"` // loopback address to dial from
}

// Traffic is what a worker does during one load step.
type Traffic struct {
	// Duration bounds the step; Messages, if set, bounds the sends too.
	Duration time.Duration `json:"duration"`
	Rate     float64       `json:"rate"` // this worker's sends per second
	Messages int           `json:"messages,omitempty"`
	// Senders are taken in turn, one message each.
	Senders []Slot `json:"senders,omitempty"`
	// HistoryRate is this worker's history reads per second, by Readers
	// in turn, each reading the newest page of the slot's room.
	HistoryRate float64 `json:"history_rate,omitempty"`
	Readers     []Slot  `json:"readers,omitempty"`
	// DisruptAt, if set, is when after the start every client drops its
	// connection without a close handshake, reconnects and resumes each
	// room after the last seq it received.
	DisruptAt time.Duration `json:"disrupt_at,omitempty"`
	// MaxInFlight bounds requests awaiting their answers.
	MaxInFlight int `json:"max_in_flight"`
	// RetryFor, if set, keeps retrying a send that failed for a passing
	// reason until this long after its first attempt, instead of a fixed
	// number of attempts: a client riding out an outage. The step's
	// requests may then last this long after its end.
	RetryFor time.Duration `json:"retry_for,omitempty"`

	// Extension point: typing indicators and read receipts become rates
	// and slots here, like HistoryRate and Readers, once Parley serves
	// them: schemas/parley/v1/protocol.proto defines Typing and MarkRead,
	// but neither the gateway nor pkg/client handles them yet. Until then
	// the bench sends no stand-in traffic for them.
}

// Slot is a client acting in one of its rooms.
type Slot struct {
	Client int    `json:"client"` // index into Plan.Clients
	Room   string `json:"room"`
}
