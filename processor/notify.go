package processor

import (
	"context"
	"errors"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/parley-chat/parley/pkg/bus"
	"github.com/parley-chat/parley/pkg/presence"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
	"github.com/parley-chat/parley/pkg/store"
)

// Notification reasons.
const (
	reasonDirect  = "direct"
	reasonMention = "mention"
)

// notifySlots bounds the notification lookups in flight in this process:
// a burst of direct messages or mentions slows sequencing down rather than
// piling up goroutines.
var notifySlots = make(chan struct{}, 256)

const (
	notifyTimeout = 5 * time.Second
	previewLen    = 140 // bytes of text a notification carries at most
)

// notify publishes a pb.Notification on notify.<user>, for a push bridge,
// to each user a newly sequenced regular message is for who has no device
// online: the other member of a direct room, and members it mentions. The
// lookups run aside, so sequencing does not wait for them; a failure
// loses a push, never a message.
func (p *Processor) notify(m *pb.Message, kind store.RoomKind) {
	if m.Kind != pb.MessageKind_MESSAGE_KIND_TEXT || (kind != store.RoomDirect && len(m.Mentions) == 0) {
		return
	}
	notifySlots <- struct{}{}
	go func() {
		defer func() { <-notifySlots }()
		ctx, cancel := context.WithTimeout(context.Background(), notifyTimeout)
		defer cancel()
		if err := p.notifyOffline(ctx, m, kind); err != nil {
			p.log.Warn("notifications not sent", zap.String("room", m.Room), zap.Uint64("seq", m.Seq), zap.Error(err))
		}
	}()
}

func (p *Processor) notifyOffline(ctx context.Context, m *pb.Message, kind store.RoomKind) error {
	reasons := make(map[string]string) // user -> why
	for _, u := range m.Mentions {
		if u == m.Sender || reasons[u] != "" {
			continue
		}
		_, err := p.st.Member(ctx, m.Room, u)
		switch {
		case err == nil:
			reasons[u] = reasonMention
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
	}
	if kind == store.RoomDirect {
		members, err := p.st.Members(ctx, m.Room, "", 2)
		if err != nil {
			return err
		}
		for _, mb := range members {
			if mb.User != m.Sender {
				reasons[mb.User] = reasonDirect
			}
		}
	}
	if len(reasons) == 0 {
		return nil
	}
	users := make([]string, 0, len(reasons))
	for u := range reasons {
		users = append(users, u)
	}
	states, err := presence.Directory{NC: p.nc}.States(ctx, users)
	if err != nil {
		// Presence unknown: a needless push beats a lost one.
		p.log.Warn("presence unavailable, notifying everyone", zap.Error(err))
	}
	for u, reason := range reasons {
		if states[u].Online {
			continue
		}
		data, err := proto.Marshal(&pb.Notification{
			User: u, Room: m.Room, Seq: m.Seq, Sender: m.Sender, Reason: reason, Preview: preview(m.GetBody().GetText()),
		})
		if err == nil {
			err = p.nc.Publish(bus.Notifications(u), data)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// preview cuts text to previewLen bytes at most, on a character boundary.
func preview(text string) string {
	if len(text) <= previewLen {
		return text
	}
	cut := previewLen
	for cut > 0 && !utf8.RuneStart(text[cut]) {
		cut--
	}
	return text[:cut]
}
