package bus

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// StreamConfig holds the deployment choices for Parley's streams.
type StreamConfig struct {
	// Partitions is the processor partition count. It is a property of the
	// deployment, stored once in CHAT_MSG's metadata: 0 means "what the
	// stream says" (DefaultPartitions for a new deployment), and any other
	// value must match the stored one.
	Partitions int
	Replicas   int // 1 on a single node, 3 in a cluster
	// MsgMaxAge bounds how long CHAT_MSG keeps messages for live catch-up;
	// older ones are served from the history store. The archiver must never
	// lag behind by more than this.
	MsgMaxAge time.Duration
	// MaxMsgSize bounds one bus message (encoded body plus envelope).
	MaxMsgSize int32
}

// Defaults fills zero fields with Parley's defaults (Partitions stays as
// given: EnsureStreams resolves it).
func (c StreamConfig) Defaults() StreamConfig {
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	if c.MsgMaxAge <= 0 {
		c.MsgMaxAge = 7 * 24 * time.Hour
	}
	if c.MaxMsgSize <= 0 {
		c.MaxMsgSize = 1 << 20
	}
	return c
}

// MetaPartitions is the CHAT_MSG metadata key holding the partition count.
const MetaPartitions = "parley.partitions"

// MsgStreamConfig is CHAT_MSG with partitions partitions: every room's
// sequenced messages, one subject per room (MsgSubject), republished to
// room.<room>.ev once stored.
func MsgStreamConfig(c StreamConfig, partitions int) jetstream.StreamConfig {
	c = c.Defaults()
	return jetstream.StreamConfig{
		Name:        StreamMsg,
		Description: "Parley room messages in per-room seq order",
		Subjects:    []string{"chat.msg.*"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    c.Replicas,
		MaxAge:      c.MsgMaxAge,
		MaxMsgSize:  c.MaxMsgSize,
		AllowDirect: true,
		RePublish: &jetstream.RePublish{
			Source:      "chat.msg.*",
			Destination: "room.{{wildcard(1)}}.ev",
		},
		Metadata: map[string]string{MetaPartitions: strconv.Itoa(partitions)},
	}
}

// ErrPartitions means a process was started with a partition count other
// than the one the deployment's CHAT_MSG was created with.
var ErrPartitions = errors.New("partition count mismatch")

// EnsureStreams creates CHAT_MSG, or checks an existing one against c and
// updates what may change (replicas, limits). It returns the deployment's
// partition count: the one stored in the stream. A c.Partitions that
// differs from it is an error, never a change: the count decides which
// processor writes a room, and two counts at once would mean two writers.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, c StreamConfig) (int, error) {
	for attempt := 0; ; attempt++ {
		parts, found, err := storedPartitions(ctx, js)
		if err != nil {
			return 0, err
		}
		if !found {
			parts = cmp.Or(c.Partitions, DefaultPartitions)
			_, err := js.CreateStream(ctx, MsgStreamConfig(c, parts))
			if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) && attempt == 0 {
				continue // created meanwhile by another process: check it
			}
			if err != nil {
				return 0, fmt.Errorf("stream %s: %w", StreamMsg, err)
			}
			return parts, nil
		}
		if err := checkPartitions(parts, c.Partitions); err != nil {
			return 0, err
		}
		if err := EnsureStream(ctx, js, MsgStreamConfig(c, parts)); err != nil {
			return 0, fmt.Errorf("stream %s: %w", StreamMsg, err)
		}
		return parts, nil
	}
}

// checkPartitions refuses a configured partition count (0: any) other
// than the stored one.
func checkPartitions(stored, configured int) error {
	if configured != 0 && configured != stored {
		return fmt.Errorf("%w: %s was created with %d partitions, this process was started with %d; start it with --partitions %d (or 0 to use the stored count)",
			ErrPartitions, StreamMsg, stored, configured, stored)
	}
	return nil
}

// storedPartitions reads the partition count from CHAT_MSG's metadata;
// found is false when the stream does not exist yet.
func storedPartitions(ctx context.Context, js jetstream.JetStream) (parts int, found bool, err error) {
	s, err := js.Stream(ctx, StreamMsg)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("stream %s: %w", StreamMsg, err)
	}
	meta := s.CachedInfo().Config.Metadata[MetaPartitions]
	parts, err = strconv.Atoi(meta)
	if err != nil || parts <= 0 {
		return 0, true, fmt.Errorf("stream %s has no valid %q metadata (%q): it was made by an earlier Parley with partitioned subjects; start on a new data dir", StreamMsg, MetaPartitions, meta)
	}
	return parts, true, nil
}

// EnsureStream creates a stream, or updates it where its configuration
// differs; an identical one is left alone. Every process ensures the
// streams it uses at start, often while others create consumers on them,
// and nats-server 2.15 races a stream update against a consumer creation
// on its file store.
func EnsureStream(ctx context.Context, js jetstream.JetStream, sc jetstream.StreamConfig) error {
	_, err := js.CreateStream(ctx, sc)
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		_, err = js.UpdateStream(ctx, sc)
	}
	return err
}

// EnsureKeyValue is EnsureStream for a KV bucket.
func EnsureKeyValue(ctx context.Context, js jetstream.JetStream, kc jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := js.CreateKeyValue(ctx, kc)
	if errors.Is(err, jetstream.ErrBucketExists) {
		kv, err = js.UpdateKeyValue(ctx, kc)
	}
	return kv, err
}
