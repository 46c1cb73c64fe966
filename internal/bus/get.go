package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
)

// StoredMsg is one message read back from a stream.
type StoredMsg struct {
	Subject  string
	Sequence uint64 // stream sequence
	Header   nats.Header
	Data     []byte
}

// ErrNotFound means the stream holds no matching message.
var ErrNotFound = errors.New("no message")

// LastForSubject reads the last message stored on subject with a normal
// (leader) get. Unlike Direct Get, which any replica may answer, it always
// sees the latest write: use it where correctness depends on that, such as
// reloading a room's last seq on takeover.
func LastForSubject(ctx context.Context, nc *nats.Conn, stream, subject string) (*StoredMsg, error) {
	return leaderGet(ctx, nc, stream, map[string]any{"last_by_subj": subject})
}

// MsgAt reads the message at a stream sequence with a leader get.
func MsgAt(ctx context.Context, nc *nats.Conn, stream string, seq uint64) (*StoredMsg, error) {
	return leaderGet(ctx, nc, stream, map[string]any{"seq": seq})
}

func leaderGet(ctx context.Context, nc *nats.Conn, stream string, req map[string]any) (*StoredMsg, error) {
	body, _ := json.Marshal(req)
	resp, err := nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET."+stream, body)
	if err != nil {
		return nil, err
	}
	var r struct {
		Message *struct {
			Subject string `json:"subject"`
			Seq     uint64 `json:"seq"`
			Hdrs    []byte `json:"hdrs"`
			Data    []byte `json:"data"`
		} `json:"message"`
		Error *struct {
			Code        int    `json:"code"`
			ErrCode     int    `json:"err_code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(resp.Data, &r); err != nil {
		return nil, fmt.Errorf("stream get: %w", err)
	}
	if r.Error != nil {
		if r.Error.Code == 404 {
			return nil, ErrNotFound
		}
		return nil, fmt.Errorf("stream get: %s (%d)", r.Error.Description, r.Error.ErrCode)
	}
	if r.Message == nil {
		return nil, ErrNotFound
	}
	m := &StoredMsg{Subject: r.Message.Subject, Sequence: r.Message.Seq, Data: r.Message.Data}
	if len(r.Message.Hdrs) > 0 {
		if m.Header, err = nats.DecodeHeadersMsg(r.Message.Hdrs); err != nil {
			return nil, fmt.Errorf("stream get headers: %w", err)
		}
	}
	return m, nil
}

// NextBySubject reads up to batch messages stored on subject at stream
// sequences >= from, in order, with one batched Direct Get (ADR-31). Direct
// Get may be answered by a replica that lags the leader, so callers must
// treat the result as possibly incomplete at its end.
func NextBySubject(ctx context.Context, nc *nats.Conn, stream, subject string, from uint64, batch int) ([]StoredMsg, error) {
	if from == 0 {
		from = 1
	}
	return directGet(ctx, nc, stream, map[string]any{"seq": from, "next_by_subj": subject, "batch": batch}, batch)
}

// MaxLastBySubjects bounds the messages one LastBySubjects call may match
// (the server's limit on a multi-subject Direct Get).
const MaxLastBySubjects = 1024

// LastBySubjects reads the last message of every subject matching any of
// filters (wildcards allowed), in stream order, with one Direct Get
// (ADR-31). Like every Direct Get it may lag the leader slightly.
func LastBySubjects(ctx context.Context, nc *nats.Conn, stream string, filters []string) ([]StoredMsg, error) {
	return directGet(ctx, nc, stream, map[string]any{"multi_last": filters}, MaxLastBySubjects)
}

// directGet runs one batched Direct Get and collects up to limit messages,
// until the server's end-of-batch (or no-results) status.
func directGet(ctx context.Context, nc *nats.Conn, stream string, req map[string]any, limit int) ([]StoredMsg, error) {
	inbox := nc.NewInbox()
	ch := make(chan *nats.Msg, limit+1)
	sub, err := nc.ChanSubscribe(inbox, ch)
	if err != nil {
		return nil, err
	}
	defer sub.Unsubscribe()
	body, _ := json.Marshal(req)
	if err := nc.PublishRequest("$JS.API.DIRECT.GET."+stream, inbox, body); err != nil {
		return nil, err
	}
	out := make([]StoredMsg, 0, min(limit, 64))
	deadline := time.NewTimer(5 * time.Second)
	defer deadline.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-deadline.C:
			return nil, fmt.Errorf("direct get %s %s: %w", stream, body, nats.ErrTimeout)
		case m := <-ch:
			// A status message (204 end of batch, 404 none, 408 ...) ends it.
			if st := m.Header.Get("Status"); st != "" {
				if st == "404" || st == "204" {
					return out, nil
				}
				return nil, fmt.Errorf("direct get %s %s: status %s %s", stream, body, st, m.Header.Get("Description"))
			}
			seq, _ := strconv.ParseUint(m.Header.Get("Nats-Sequence"), 10, 64)
			out = append(out, StoredMsg{Subject: m.Header.Get("Nats-Subject"), Sequence: seq, Header: m.Header, Data: m.Data})
			if len(out) == limit {
				// The server still sends an end-of-batch marker; no need to wait.
				return out, nil
			}
		}
	}
}

// NextBySubjectSince is NextBySubject from the first message stored at or
// after since.
func NextBySubjectSince(ctx context.Context, nc *nats.Conn, stream, subject string, since time.Time, batch int) ([]StoredMsg, error) {
	return directGet(ctx, nc, stream, map[string]any{"start_time": since.UTC(), "next_by_subj": subject, "batch": batch}, batch)
}
