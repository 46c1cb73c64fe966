package objstore_test

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/parley-chat/parley/pkg/bus/bustest"
	"github.com/parley-chat/parley/pkg/media"
	"github.com/parley-chat/parley/pkg/media/mediatest"
	"github.com/parley-chat/parley/pkg/media/objstore"
)

func TestConformance(t *testing.T) {
	mediatest.Run(t, func(t *testing.T) media.Store {
		js, err := jetstream.New(bustest.Connect(t))
		if err != nil {
			t.Fatal(err)
		}
		st, err := objstore.Open(context.Background(), js, objstore.Config{})
		if err != nil {
			t.Fatal(err)
		}
		return st
	})
}
