package pebblestore

import (
	"context"
	"fmt"
	"math"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/proto"

	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
)

// AppendMessages writes msgs in one synced batch: all of them or none.
func (s *Store) AppendMessages(ctx context.Context, msgs []*pb.ArchivedMessage) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(msgs) == 0 {
		return nil
	}
	b := s.db.NewBatch()
	defer b.Close()
	for _, m := range msgs {
		room, seq := m.GetMessage().GetRoom(), m.GetMessage().GetSeq()
		if err := checkID("room", room); err != nil {
			return err
		}
		if seq == 0 { // never assigned; it would also sort before every real seq
			return fmt.Errorf("pebblestore: room %q: message without seq", room)
		}
		v, err := proto.Marshal(m)
		if err != nil {
			return fmt.Errorf("pebblestore: marshal room %q seq %d: %w", room, seq, err)
		}
		if err := b.Set(historyKey(room, seq), v, nil); err != nil {
			return fmt.Errorf("pebblestore: batch: %w", err)
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("pebblestore: append %d messages: %w", len(msgs), err)
	}
	return nil
}

// Messages reads one bounded key range of the room's history.
func (s *Store) Messages(ctx context.Context, room string, from, to uint64, limit int, desc bool) ([]*pb.ArchivedMessage, error) {
	if to != 0 && to < from {
		return nil, nil
	}
	upper := scopeEnd(historyPrefix, room)
	if to != 0 && to < math.MaxUint64 {
		upper = historyKey(room, to+1)
	}
	var out []*pb.ArchivedMessage
	err := s.scan(ctx, historyKey(room, from), upper, limit, desc, func(k, v []byte) error {
		m := &pb.ArchivedMessage{}
		if err := proto.Unmarshal(v, m); err != nil {
			return fmt.Errorf("decode seq %d: %w", seqOfHistoryKey(k), err)
		}
		out = append(out, m)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pebblestore: messages of room %q: %w", room, err)
	}
	return out, nil
}

// HistoryHead reads the last key of the room's history range.
func (s *Store) HistoryHead(ctx context.Context, room string) (uint64, error) {
	var head uint64
	err := s.scan(ctx, scope(historyPrefix, room), scopeEnd(historyPrefix, room), 1, true, func(k, _ []byte) error {
		head = seqOfHistoryKey(k)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("pebblestore: head of room %q: %w", room, err)
	}
	return head, nil
}
