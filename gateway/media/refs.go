package media

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/parley-chat/parley/pkg/media/catalog"
)

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
func (h *Handler) Attach(ctx context.Context, sender, room, msg string, urls []string) error {
	var ids []string
	for _, u := range urls {
		id, ok := IDFromURL(u)
		if !ok {
			continue
		}
		rec, err := h.cat.Get(ctx, id)
		if errors.Is(err, catalog.ErrNotFound) {
			return fmt.Errorf("%w: %s", ErrNotAttachable, u)
		}
		if err != nil {
			return err
		}
		ok, err = h.mayRead(ctx, rec, sender)
		if err != nil {
			return err
		}
		if !ok || (rec.State != catalog.Ready && rec.State != catalog.Scanning) {
			return fmt.Errorf("%w: %s", ErrNotAttachable, u)
		}
		ids = append(ids, id)
	}
	for _, id := range ids {
		if _, err := h.cat.AddRef(ctx, id, catalog.Ref{Room: room, Msg: msg}); err != nil {
			return err
		}
	}
	return nil
}

// Detach is called when a message is deleted: its uploads that no other
// message carries are deleted, so their urls answer 404 from then on.
func (h *Handler) Detach(ctx context.Context, room, msg string) error {
	orphans, err := h.cat.RemoveMessage(ctx, room, msg)
	for _, rec := range orphans {
		if derr := h.discard(ctx, rec); derr != nil {
			err = errors.Join(err, derr)
		}
	}
	return err
}

// Collect deletes the uploads never sent whose last change is older than
// Config.UnsentTTL at now (finished or abandoned halfway), and returns how
// many it deleted.
func (h *Handler) Collect(ctx context.Context, now time.Time) (int, error) {
	ids, err := h.cat.IDs(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		rec, err := h.cat.Get(ctx, id)
		if errors.Is(err, catalog.ErrNotFound) {
			continue
		}
		if err != nil {
			return n, err
		}
		if rec.Sent || now.Sub(rec.Updated) < h.cfg.UnsentTTL {
			continue
		}
		if err := h.discard(ctx, rec); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// RunCollector calls Collect every interval until ctx ends. Collection is
// idempotent, so every gateway may run it.
func (h *Handler) RunCollector(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if n, err := h.Collect(ctx, now); err != nil {
				h.log.Warn("collecting unsent uploads", zap.Error(err))
			} else if n > 0 {
				h.log.Info("collected unsent uploads", zap.Int("count", n))
			}
		}
	}
}
