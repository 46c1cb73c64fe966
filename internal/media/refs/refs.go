// Package refs decides who may read an upload and keeps track of what
// references it: the send path records which messages carry which uploads
// (Attach), deleting a message deletes the uploads no other message carries
// (Detach), and uploads never sent are collected after a TTL (Collect). It
// serves gateways (every download asks MayRead) and whichever role handles
// sends and deletes.
//
// Invariants: an upload belongs to its uploader until it is sent in a room;
// from then on only members of a room where it was sent may read it, asked
// of the membership store at every call. An upload no message carries any
// more is deleted, bytes first.
package refs

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/parley-chat/parley/internal/media/catalog"
	"github.com/parley-chat/parley/pkg/media"
	"github.com/parley-chat/parley/pkg/store"
)

// Members looks up a membership: store.ErrNotFound when user is not a
// member of room. store.RoomStore has it.
type Members interface {
	Member(ctx context.Context, room, user string) (store.Member, error)
}

// URLPrefix starts the url of every upload: URLPrefix + id.
const URLPrefix = "/api/v1/media/"

// DefaultUnsentTTL is how long an upload never sent is kept after its last
// change.
const DefaultUnsentTTL = 24 * time.Hour

// Refs is the reference keeper.
type Refs struct {
	cat       *catalog.Catalog
	blobs     media.Store
	members   Members
	unsentTTL time.Duration
	log       *zap.Logger
}

// New returns a keeper; unsentTTL 0 is DefaultUnsentTTL.
func New(cat *catalog.Catalog, blobs media.Store, members Members, unsentTTL time.Duration, log *zap.Logger) *Refs {
	if unsentTTL <= 0 {
		unsentTTL = DefaultUnsentTTL
	}
	return &Refs{cat: cat, blobs: blobs, members: members, unsentTTL: unsentTTL, log: log}
}

// MayRead tells whether user may read rec: its owner until it is sent;
// then members of a room it was sent in.
func (x *Refs) MayRead(ctx context.Context, rec catalog.Record, user string) (bool, error) {
	if !rec.Sent {
		return rec.Owner == user, nil
	}
	for _, ref := range rec.Refs {
		_, err := x.members.Member(ctx, ref.Room, user)
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return false, err
		}
	}
	return false, nil
}

// Discard deletes an upload's bytes and record and gives its reservation
// back.
func (x *Refs) Discard(ctx context.Context, rec catalog.Record) error {
	keys := []string{catalog.BlobKey(rec.ID), catalog.ThumbKey(rec.ID)}
	for _, p := range rec.Parts {
		keys = append(keys, p.Key)
	}
	for _, k := range keys {
		if err := x.blobs.Delete(ctx, k); err != nil {
			return err
		}
	}
	if err := x.cat.Delete(ctx, rec.ID); err != nil {
		return err
	}
	return x.cat.Release(ctx, rec.Owner, rec.Reserved)
}

// ErrNotAttachable refuses a message that carries an upload its sender may
// not send: unknown, someone else's and not visible to them, or unfinished.
var ErrNotAttachable = errors.New("media: attachment is not an upload the sender may send")

// Attach is the reference recorder the send path calls for a message that
// carries attachments, before the message is stored: room and msg name
// the message (msg is its seq in decimal, the ref_seq a later delete
// names). Attachment urls that are not Parley uploads are ignored. Each
// upload must be the sender's own, or already readable by them (forwarded
// from a room they are in), and finished; else nothing is recorded and
// ErrNotAttachable says which.
func (x *Refs) Attach(ctx context.Context, sender, room, msg string, urls []string) error {
	var ids []string
	for _, u := range urls {
		id, ok := IDFromURL(u)
		if !ok {
			continue
		}
		rec, err := x.cat.Get(ctx, id)
		if errors.Is(err, catalog.ErrNotFound) {
			return fmt.Errorf("%w: %s", ErrNotAttachable, u)
		}
		if err != nil {
			return err
		}
		ok, err = x.MayRead(ctx, rec, sender)
		if err != nil {
			return err
		}
		if !ok || (rec.State != catalog.Ready && rec.State != catalog.Scanning) {
			return fmt.Errorf("%w: %s", ErrNotAttachable, u)
		}
		ids = append(ids, id)
	}
	for _, id := range ids {
		if _, err := x.cat.AddRef(ctx, id, catalog.Ref{Room: room, Msg: msg}); err != nil {
			return err
		}
	}
	return nil
}

// Detach is called when a message is deleted: its uploads that no other
// message carries are deleted, so their urls answer 404 from then on.
func (x *Refs) Detach(ctx context.Context, room, msg string) error {
	orphans, err := x.cat.RemoveMessage(ctx, room, msg)
	for _, rec := range orphans {
		if derr := x.Discard(ctx, rec); derr != nil {
			err = errors.Join(err, derr)
		}
	}
	return err
}

// Collect deletes the uploads never sent whose last change is older than
// the keeper's unsent TTL at now (finished or abandoned halfway), and returns how
// many it deleted.
func (x *Refs) Collect(ctx context.Context, now time.Time) (int, error) {
	ids, err := x.cat.IDs(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		rec, err := x.cat.Get(ctx, id)
		if errors.Is(err, catalog.ErrNotFound) {
			continue
		}
		if err != nil {
			return n, err
		}
		if rec.Sent || now.Sub(rec.Updated) < x.unsentTTL {
			continue
		}
		if err := x.Discard(ctx, rec); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// RunCollector calls Collect every interval until ctx ends. Collection is
// idempotent, so every node may run it.
func (x *Refs) RunCollector(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if n, err := x.Collect(ctx, now); err != nil {
				x.log.Warn("collecting unsent uploads", zap.Error(err))
			} else if n > 0 {
				x.log.Info("collected unsent uploads", zap.Int("count", n))
			}
		}
	}
}

// IDFromURL returns the upload id in an attachment url (URLPrefix+id,
// relative or absolute).
func IDFromURL(s string) (string, bool) {
	u, err := url.Parse(s)
	if err != nil {
		return "", false
	}
	id, ok := strings.CutPrefix(u.Path, URLPrefix)
	return id, ok && catalog.ValidID(id)
}
