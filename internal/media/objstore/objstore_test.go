package objstore_test

import (
	"context"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/parley-chat/parley/internal/bus/bustest"
	"github.com/parley-chat/parley/internal/media/objstore"
	"github.com/parley-chat/parley/pkg/media"
	"github.com/parley-chat/parley/pkg/media/mediatest"
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

// TestBind: a role that may not create streams binds to the bucket another
// role made, and fails clearly before it exists.
func TestBind(t *testing.T) {
	ctx := context.Background()
	js, err := jetstream.New(bustest.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := objstore.Open(ctx, js, objstore.Config{Bind: true}); err == nil {
		t.Fatal("bound to a bucket nobody created")
	}
	made, err := objstore.Open(ctx, js, objstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := made.Put(ctx, "k/file", strings.NewReader("bytes"), 5, "text/plain"); err != nil {
		t.Fatal(err)
	}
	bound, err := objstore.Open(ctx, js, objstore.Config{Bind: true})
	if err != nil {
		t.Fatal(err)
	}
	if info, err := bound.Stat(ctx, "k/file"); err != nil || info.Size != 5 {
		t.Fatalf("Stat through the bound store: %+v, %v", info, err)
	}
}
