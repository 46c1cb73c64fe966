package scyllastore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/gocql/gocql"
	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/proto"

	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
	"github.com/parley-chat/parley/pkg/store"
)

// BucketSize is how many consecutive seqs of a room share a messages
// partition: bucket = seq / BucketSize. It is part of the stored format;
// changing it means rewriting every room's history.
const BucketSize = 1000

const (
	insertMessage = `INSERT INTO messages (room_id, bucket, seq, stream_seq, message) VALUES (?, ?, ?, ?, ?)`
	// The head cell's write timestamp is the seq itself, so the highest seq
	// wins whatever order writes arrive in: monotonic without LWT.
	upsertHead = `INSERT INTO room_heads (room_id, head) VALUES (?, ?) USING TIMESTAMP ?`
	selectHead = `SELECT head FROM room_heads WHERE room_id = ?`
	// One bucket's messages with from <= seq <= to, either way round.
	selectBucketAsc  = `SELECT message, stream_seq FROM messages WHERE room_id = ? AND bucket = ? AND seq >= ? AND seq <= ? ORDER BY seq ASC LIMIT ?`
	selectBucketDesc = `SELECT message, stream_seq FROM messages WHERE room_id = ? AND bucket = ? AND seq >= ? AND seq <= ? ORDER BY seq DESC LIMIT ?`
)

// AppendMessages writes msgs grouped per room, rooms in parallel. Within a
// room, each bucket's messages go in single-partition UNLOGGED batches, and
// the head is raised last, so a reader that sees head h finds every message
// of the call up to h. Every write is an upsert: replaying msgs is harmless.
func (st *Store) AppendMessages(ctx context.Context, msgs []*pb.ArchivedMessage) error {
	byRoom := map[string][]*pb.ArchivedMessage{}
	for _, m := range msgs {
		if err := checkArchived(m); err != nil {
			return err
		}
		byRoom[m.Message.Room] = append(byRoom[m.Message.Room], m)
	}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(writeConcurrency)
	for room, ms := range byRoom {
		g.Go(func() error {
			if err := st.appendRoom(ctx, room, ms); err != nil {
				return fmt.Errorf("scyllastore: append to room %q: %w", room, err)
			}
			return nil
		})
	}
	return g.Wait()
}

func checkArchived(m *pb.ArchivedMessage) error {
	switch {
	case m.GetMessage() == nil:
		return fmt.Errorf("scyllastore: archived message without message")
	case m.Message.Room == "":
		return fmt.Errorf("scyllastore: message %d without room", m.Message.Seq)
	case m.Message.Seq == 0 || m.Message.Seq > math.MaxInt64 || m.StreamSeq > math.MaxInt64:
		// CQL bigint is signed; seq 0 is never assigned.
		return fmt.Errorf("scyllastore: room %q: seq %d / stream seq %d out of range", m.Message.Room, m.Message.Seq, m.StreamSeq)
	}
	return nil
}

// appendRoom writes one room's messages, then its head.
func (st *Store) appendRoom(ctx context.Context, room string, msgs []*pb.ArchivedMessage) error {
	slices.SortFunc(msgs, func(a, b *pb.ArchivedMessage) int { return cmp.Compare(a.Message.Seq, b.Message.Seq) })
	head := int64(msgs[len(msgs)-1].Message.Seq)
	for len(msgs) > 0 {
		bucket := msgs[0].Message.Seq / BucketSize
		var rows []row
		for len(msgs) > 0 && msgs[0].Message.Seq/BucketSize == bucket {
			m := msgs[0]
			blob, err := proto.Marshal(m.Message)
			if err != nil {
				return fmt.Errorf("marshal message %d: %w", m.Message.Seq, err)
			}
			rows = append(rows, row{
				args: []any{room, int64(bucket), int64(m.Message.Seq), int64(m.StreamSeq), blob},
				size: len(room) + len(blob) + 24,
			})
			msgs = msgs[1:]
		}
		if err := st.writePartition(ctx, insertMessage, rows); err != nil {
			return fmt.Errorf("bucket %d: %w", bucket, err)
		}
	}
	if err := st.query(ctx, upsertHead, room, head, head).Exec(); err != nil {
		return fmt.Errorf("head %d: %w", head, err)
	}
	return nil
}

// Messages walks the buckets that [from, min(to, head)] spans, in the
// requested order, one query per bucket with the remaining limit, and stops
// as soon as limit messages are read. Seqs are dense, so every bucket in the
// range holds messages: no empty partitions are scanned, and nothing past
// the head is.
func (st *Store) Messages(ctx context.Context, room string, from, to uint64, limit int, desc bool) ([]*pb.ArchivedMessage, error) {
	if limit <= 0 {
		return nil, nil
	}
	head, err := st.HistoryHead(ctx, room)
	if err != nil {
		return nil, err
	}
	hi := head
	if to != 0 && to < hi {
		hi = to
	}
	if head == 0 || from > hi {
		return nil, nil
	}
	stmt := selectBucketAsc
	if desc {
		stmt = selectBucketDesc
	}
	first, last := from/BucketSize, hi/BucketSize
	var out []*pb.ArchivedMessage
	for i := uint64(0); i <= last-first && len(out) < limit; i++ {
		bucket := first + i
		if desc {
			bucket = last - i
		}
		want := limit - len(out)
		q := st.query(ctx, stmt, room, int64(bucket), int64(from), int64(hi), want).PageSize(min(want, readPageSize))
		err := scanAll(q, func(sc gocql.Scanner) error {
			var blob []byte
			var streamSeq int64
			if err := sc.Scan(&blob, &streamSeq); err != nil {
				return err
			}
			m := &pb.Message{}
			if err := proto.Unmarshal(blob, m); err != nil {
				return fmt.Errorf("decode message: %w", err)
			}
			out = append(out, &pb.ArchivedMessage{Message: m, StreamSeq: uint64(streamSeq)})
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("scyllastore: read room %q bucket %d: %w", room, bucket, err)
		}
	}
	return out, nil
}

// HistoryHead reads the room's head; 0 for a room without messages.
func (st *Store) HistoryHead(ctx context.Context, room string) (uint64, error) {
	var head int64
	err := scanOne(st.query(ctx, selectHead, room), &head)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("scyllastore: head of room %q: %w", room, err)
	}
	return uint64(head), nil
}
