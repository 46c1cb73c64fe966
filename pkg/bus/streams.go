package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// StreamConfig holds the deployment choices for Parley's streams.
type StreamConfig struct {
	Partitions int
	Replicas   int           // 1 on a single node, 3 in a cluster
	Duplicates time.Duration // dedup window for Nats-Msg-Id (default 2m)
	// MsgMaxAge bounds how long CHAT_MSG keeps messages for live catch-up;
	// older ones are served from the history store. The archiver must never
	// lag behind by more than this.
	MsgMaxAge time.Duration
	// MaxMsgSize bounds one bus message (encoded body plus envelope).
	MaxMsgSize int32
}

// Defaults fills zero fields with Parley's defaults.
func (c StreamConfig) Defaults() StreamConfig {
	if c.Partitions <= 0 {
		c.Partitions = DefaultPartitions
	}
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	if c.Duplicates <= 0 {
		c.Duplicates = 2 * time.Minute
	}
	if c.MsgMaxAge <= 0 {
		c.MsgMaxAge = 7 * 24 * time.Hour
	}
	if c.MaxMsgSize <= 0 {
		c.MaxMsgSize = 1 << 20
	}
	return c
}

// InStreamConfig is CHAT_IN: a work queue of client messages, one
// processor partition per chat.in.<part>.> filter.
func InStreamConfig(c StreamConfig) jetstream.StreamConfig {
	c = c.Defaults()
	return jetstream.StreamConfig{
		Name:        StreamIn,
		Description: "Parley client messages waiting to be sequenced",
		Subjects:    []string{"chat.in.>"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    c.Replicas,
		Duplicates:  c.Duplicates,
		MaxMsgSize:  c.MaxMsgSize,
		MaxAge:      24 * time.Hour,
	}
}

// MsgStreamConfig is CHAT_MSG: every room's sequenced messages, one
// subject per room, republished to room.<room>.ev once stored.
func MsgStreamConfig(c StreamConfig) jetstream.StreamConfig {
	c = c.Defaults()
	return jetstream.StreamConfig{
		Name:        StreamMsg,
		Description: "Parley room messages in per-room seq order",
		Subjects:    []string{"chat.msg.>"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    c.Replicas,
		Duplicates:  c.Duplicates,
		MaxAge:      c.MsgMaxAge,
		MaxMsgSize:  c.MaxMsgSize,
		AllowDirect: true,
		RePublish: &jetstream.RePublish{
			Source:      "chat.msg.*.*",
			Destination: "room.{{wildcard(2)}}.ev",
		},
	}
}

// EnsureStreams creates or updates CHAT_IN and CHAT_MSG.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, c StreamConfig) error {
	for _, sc := range []jetstream.StreamConfig{InStreamConfig(c), MsgStreamConfig(c)} {
		if err := EnsureStream(ctx, js, sc); err != nil {
			return fmt.Errorf("stream %s: %w", sc.Name, err)
		}
	}
	return nil
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
