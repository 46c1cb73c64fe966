package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// awaitInterval spaces the checks of a role waiting for another one to
// create a stream or bucket.
const awaitInterval = 500 * time.Millisecond

// AwaitStreams is EnsureStreams for a role that may not create streams
// (a gateway): it waits until CHAT_MSG exists, then returns its partition
// count, checked against c.Partitions. It logs while it waits, and gives
// up when ctx ends.
func AwaitStreams(ctx context.Context, js jetstream.JetStream, c StreamConfig, log *zap.Logger) (int, error) {
	var parts int
	err := Await(ctx, log, "stream "+StreamMsg, func() (bool, error) {
		p, found, err := storedPartitions(ctx, js)
		parts = p
		return found, err
	})
	if err != nil {
		return 0, err
	}
	return parts, checkPartitions(parts, c.Partitions)
}

// AwaitKeyValue waits until a bucket another role creates exists, and
// returns it.
func AwaitKeyValue(ctx context.Context, js jetstream.JetStream, bucket string, log *zap.Logger) (jetstream.KeyValue, error) {
	var kv jetstream.KeyValue
	err := Await(ctx, log, "bucket "+bucket, func() (bool, error) {
		var err error
		kv, err = js.KeyValue(ctx, bucket)
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			return false, nil
		}
		return err == nil, err
	})
	return kv, err
}

// Await calls exists until it reports true or an error, logging every
// few seconds what it waits for.
func Await(ctx context.Context, log *zap.Logger, what string, exists func() (bool, error)) error {
	logged := time.Now()
	for {
		ok, err := exists()
		if ok || err != nil {
			return err
		}
		if time.Since(logged) > 5*time.Second {
			log.Info("waiting for the processor or archiver role to create it", zap.String("what", what))
			logged = time.Now()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s does not exist: %w", what, ctx.Err())
		case <-time.After(awaitInterval):
		}
	}
}
