package media_test

import (
	"context"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/parley-chat/parley/gateway/media"
	"github.com/parley-chat/parley/internal/media/backend"
	"github.com/parley-chat/parley/internal/media/catalog"
	"github.com/parley-chat/parley/internal/media/derive"
	"github.com/parley-chat/parley/internal/media/inspect"
	"github.com/parley-chat/parley/internal/media/objstore"
	"github.com/parley-chat/parley/internal/media/refs"
)

// Example wires media into a process that runs a gateway and the derive
// worker (as `parley dev` does). A gateway whose NATS user may not create
// streams binds (Bind: true) to what another role created.
func Example() {
	var (
		ctx      = context.Background()
		nc       *nats.Conn          // the process's NATS connection
		js       jetstream.JetStream // and JetStream
		rooms    refs.Members        // store.RoomStore
		authn    media.AuthFunc      // bearer token → user
		handle   func(string, http.Handler)
		log      = zap.NewNop()
		replicas = 1
	)
	blobs, err := backend.Open(ctx, js, backend.Config{Kind: "nats", ObjStore: objstore.Config{Replicas: replicas}})
	if err != nil {
		return // a real process reports err
	}
	cat, err := catalog.Open(ctx, js, catalog.Config{Replicas: replicas})
	if err != nil {
		return // a real process reports err
	}
	if err := derive.EnsureQueue(ctx, js, replicas); err != nil {
		return // a real process reports err
	}
	keeper := refs.New(cat, blobs, rooms, 0, log)
	h := media.New(media.Config{}, authn, keeper, cat, blobs, js, log)
	h.Routes(handle)
	go keeper.RunCollector(ctx, 10*time.Minute)

	ff, _ := inspect.FindFFmpeg() // nil: no durations or poster frames; the worker says so
	go derive.NewWorker(nc, js, cat, blobs, ff, derive.Config{}, log).Run(ctx)

	// The send path, once the message has its seq and before it is stored:
	//	err := keeper.Attach(ctx, sender, room, strconv.FormatUint(seq, 10), attachmentURLs)
	// and when a message is deleted:
	//	err := keeper.Detach(ctx, room, strconv.FormatUint(refSeq, 10))
}
