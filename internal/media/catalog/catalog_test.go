package catalog_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/parley-chat/parley/internal/bus/bustest"
	"github.com/parley-chat/parley/internal/media/catalog"
)

func open(t *testing.T) *catalog.Catalog {
	js, err := jetstream.New(bustest.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	c, err := catalog.Open(context.Background(), js, catalog.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestIDs(t *testing.T) {
	a, b := catalog.NewID(), catalog.NewID()
	if a == b || !catalog.ValidID(a) || catalog.ValidID(a[1:]) || catalog.ValidID("../"+a[3:]) {
		t.Fatalf("ids %q %q", a, b)
	}
}

func TestQuota(t *testing.T) {
	c, ctx := open(t), context.Background()
	// Concurrent reservations never pass the quota together.
	var wg sync.WaitGroup
	var mu sync.Mutex
	granted := 0
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := c.Reserve(ctx, "ann", 30, 100)
			switch {
			case err == nil:
				mu.Lock()
				granted++
				mu.Unlock()
			case !errors.Is(err, catalog.ErrQuota):
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n, _ := c.Reserved(ctx, "ann"); granted != 3 || n != 90 {
		t.Fatalf("%d reservations of 30 in 100 granted, %d reserved; want 3 and 90", granted, n)
	}
	if err := c.Release(ctx, "ann", 60); err != nil {
		t.Fatal(err)
	}
	if err := c.Reserve(ctx, "ann", 70, 100); err != nil {
		t.Fatalf("after release: %v", err)
	}
	if n, _ := c.Reserved(ctx, "bob"); n != 0 {
		t.Fatalf("bob has %d reserved", n)
	}
}

func TestRefs(t *testing.T) {
	c, ctx := open(t), context.Background()
	now := time.Now().UTC()
	a, b := catalog.NewID(), catalog.NewID()
	for _, id := range []string{a, b} {
		if err := c.Create(ctx, catalog.Record{ID: id, Owner: "ann", State: catalog.Ready, Reserved: 10, Created: now}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Reserve(ctx, "ann", 20, 100); err != nil {
		t.Fatal(err)
	}
	// a is in two messages, b in one.
	m1, m2 := catalog.Ref{Room: "r/1", Msg: "7"}, catalog.Ref{Room: "r 2", Msg: "9"}
	for _, x := range []struct {
		id  string
		ref catalog.Ref
	}{{a, m1}, {b, m1}, {a, m2}, {a, m2}} {
		if _, err := c.AddRef(ctx, x.id, x.ref); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := c.Reserved(ctx, "ann"); n != 0 {
		t.Fatalf("after sending, %d bytes still reserved", n)
	}
	if r, _ := c.Get(ctx, a); len(r.Refs) != 2 || !r.Sent {
		t.Fatalf("record a: %+v", r)
	}
	orphans, err := c.RemoveMessage(ctx, m1.Room, m1.Msg)
	if err != nil || len(orphans) != 1 || orphans[0].ID != b {
		t.Fatalf("RemoveMessage(m1) orphans %+v, %v; want only b", orphans, err)
	}
	orphans, err = c.RemoveMessage(ctx, m2.Room, m2.Msg)
	if err != nil || len(orphans) != 1 || orphans[0].ID != a {
		t.Fatalf("RemoveMessage(m2) orphans %+v, %v; want a", orphans, err)
	}
	if orphans, err = c.RemoveMessage(ctx, m2.Room, m2.Msg); err != nil || len(orphans) != 0 {
		t.Fatalf("RemoveMessage twice: %+v, %v", orphans, err)
	}
}

func TestUpdateConcurrent(t *testing.T) {
	c, ctx := open(t), context.Background()
	id := catalog.NewID()
	if err := c.Create(ctx, catalog.Record{ID: id, Owner: "ann"}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Update(ctx, id, func(r *catalog.Record) error { r.Offset++; return nil }); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if r, _ := c.Get(ctx, id); r.Offset != 20 {
		t.Fatalf("20 concurrent increments gave %d", r.Offset)
	}
	if _, err := c.Get(ctx, catalog.NewID()); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("Get(unknown) = %v", err)
	}
}

func TestBind(t *testing.T) {
	ctx := context.Background()
	js, err := jetstream.New(bustest.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := catalog.Open(ctx, js, catalog.Config{Bind: true}); err == nil {
		t.Fatal("bound to a bucket nobody created")
	}
	made, err := catalog.Open(ctx, js, catalog.Config{})
	if err != nil {
		t.Fatal(err)
	}
	id := catalog.NewID()
	if err := made.Create(ctx, catalog.Record{ID: id, Owner: "ann"}); err != nil {
		t.Fatal(err)
	}
	bound, err := catalog.Open(ctx, js, catalog.Config{Bind: true})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := bound.Get(ctx, id); err != nil || r.Owner != "ann" {
		t.Fatalf("Get through the bound catalog: %+v, %v", r, err)
	}
}
