// Package natsauth holds the NATS users of Parley's roles and what each
// may publish and subscribe to: least privilege, so that a compromised
// gateway cannot write room messages, touch streams or answer for a
// processor or a service.
//
//   - gateway: sends requests to processors and services, reads rooms'
//     live events and signals, publishes signals, presence and its
//     users' events, reads streams and buckets; never writes CHAT_MSG
//     (only processors do), never creates, changes, purges or deletes a
//     stream, never creates a durable consumer of CHAT_MSG, and cannot
//     subscribe to sends or service requests.
//   - processor: answers sends (it subscribes to parley.send.>), appends
//     to CHAT_MSG, reads history (a room's state older than the stream),
//     holds leases, keeps presence (purges dead gateways' keys), sends
//     push notifications through its durable "notifier", records which
//     uploads messages carry and makes media previews ("media-derive").
//   - gateway, for media: stores uploads in the object store and the
//     catalog, and queues their previews.
//   - archiver: consumes CHAT_MSG through its durable "archiver", serves
//     history and accounts, records revoked sessions.
//
// No role may delete or purge a stream or delete messages from one. The
// permissions allow JetStream's API broadly and deny what a role must not
// do: deny wins over allow in NATS. Replies to requests a role received
// are allowed by the response permission, not by subject.
//
// `parley dev` sets these users up in its embedded server with random
// passwords; a production NATS cluster gets them from the configuration
// block Config writes (see the README's "NATS credentials").
package natsauth

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"golang.org/x/crypto/bcrypt"
)

// Role is a Parley role that connects to NATS.
type Role string

// The roles, and their NATS user names.
const (
	Gateway   Role = "parley-gateway"
	Processor Role = "parley-processor"
	Archiver  Role = "parley-archiver"
)

// Short is the role's name without the "parley-" prefix.
func (r Role) Short() string { return strings.TrimPrefix(string(r), "parley-") }

// Roles lists every role.
var Roles = []Role{Gateway, Processor, Archiver}

// Subjects no role may publish to: deleting streams, purging Parley's
// streams and buckets or deleting messages from them. The media object
// store (OBJ_PARLEY_MEDIA) stays purgeable: deleting an upload purges its
// chunks.
var destructive = []string{
	"$JS.API.STREAM.DELETE.>",
	"$JS.API.STREAM.MSG.DELETE.>",
	"$JS.API.ACCOUNT.PURGE.>",
	"$JS.API.STREAM.PURGE.CHAT_MSG",
	"$JS.API.STREAM.PURGE.KV_PRESENCE",
	"$JS.API.STREAM.PURGE.KV_PARLEY_PROCESSORS",
	"$JS.API.STREAM.PURGE.KV_parley_revoked_sessions",
	"$JS.API.STREAM.PURGE.KV_PARLEY_MEDIA_META",
	"$JS.API.STREAM.PURGE.PARLEY_MEDIA_WORK",
}

// media are the subjects of the embedded media store: the object store's
// chunks, the catalog bucket.
var media = []string{"$O.PARLEY_MEDIA.>", "$KV.PARLEY_MEDIA_META.>"}

// responses lets a role answer the requests it receives. A gateway
// resends a send with the same reply subject when an answer is late, so a
// processor may answer one reply subject more than once.
var responses = server.ResponsePermission{MaxMsgs: 16, Expires: 2 * time.Minute}

// Permissions returns what a role may publish and subscribe to.
func Permissions(r Role) *server.Permissions {
	switch r {
	case Gateway:
		return &server.Permissions{
			Publish: &server.SubjectPermission{
				Allow: []string{
					"parley.send.>", "parley.accounts.>", "parley.friends.>", "parley.history.>",
					"parley.contacts", "parley.gw.*.users", "room.*.sig", "presence.*",
					"$KV.PRESENCE.>", "$JS.API.>", "$JS.FC.>",
					"parley.media.work", media[0], media[1],
				},
				Deny: append([]string{
					"chat.msg.>",
					"$JS.API.STREAM.CREATE.>", "$JS.API.STREAM.UPDATE.>",
					"$JS.API.CONSUMER.CREATE.CHAT_MSG", "$JS.API.CONSUMER.CREATE.CHAT_MSG.>",
					"$JS.API.CONSUMER.DURABLE.CREATE.>", "$JS.API.CONSUMER.DELETE.CHAT_MSG.>",
				}, destructive...),
			},
			Subscribe: &server.SubjectPermission{
				Allow: []string{"room.>", "presence.*", "parley.gw.>", "parley.contacts", "parley.media.ready.*", "_INBOX.>"},
			},
		}
	case Processor:
		return &server.Permissions{
			Publish: &server.SubjectPermission{
				Allow: []string{
					"chat.msg.>", "notify.>", "presence.*", "parley.history.>",
					"$KV.PARLEY_PROCESSORS.>", "$KV.PRESENCE.>",
					"$JS.API.>", "$JS.ACK.KV_PRESENCE.>", "$JS.ACK.CHAT_MSG.notifier.>", "$JS.FC.>",
					"parley.media.ready.>", "parley.media.scan", "$JS.ACK.PARLEY_MEDIA_WORK.media-derive.>", media[0], media[1],
				},
				Deny: destructive,
			},
			Subscribe: &server.SubjectPermission{Allow: []string{"parley.send.>", "_INBOX.>"}},
			Response:  &responses,
		}
	case Archiver:
		return &server.Permissions{
			Publish: &server.SubjectPermission{
				Allow: []string{
					"$KV.parley_revoked_sessions.>",
					"$JS.API.>", "$JS.ACK.CHAT_MSG.archiver.>", "$JS.FC.>",
					"$SRV.>",
				},
				Deny: append([]string{"chat.msg.>"}, destructive...),
			},
			Subscribe: &server.SubjectPermission{
				Allow: []string{"parley.accounts.>", "parley.friends.>", "parley.history.>", "$SRV.>", "_INBOX.>"},
			},
			Response: &responses,
		}
	}
	return nil
}

// ServerConfig writes the authorization block of a nats-server
// configuration that admits each role with its password (stored as a
// bcrypt hash of the given cost, bcrypt.DefaultCost in production) and
// its permissions, and an "admin" user with admin's password and no
// restrictions, for operators' tools.
func ServerConfig(passwords map[Role]string, admin string, cost int) (string, error) {
	var b strings.Builder
	b.WriteString("# Parley's NATS users (parley nats-users): one per role, least privilege.\nauthorization {\n  users = [\n")
	hash := func(p string) (string, error) {
		h, err := bcrypt.GenerateFromPassword([]byte(p), cost)
		return string(h), err
	}
	h, err := hash(admin)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(&b, "    {user: \"admin\", password: %q}\n", h)
	for _, r := range Roles {
		h, err := hash(passwords[r])
		if err != nil {
			return "", err
		}
		p := Permissions(r)
		fmt.Fprintf(&b, "    {user: %q, password: %q, permissions: {\n", string(r), h)
		fmt.Fprintf(&b, "      publish: {allow: %s, deny: %s}\n", list(p.Publish.Allow), list(p.Publish.Deny))
		fmt.Fprintf(&b, "      subscribe: {allow: %s}\n", list(p.Subscribe.Allow))
		if p.Response != nil {
			fmt.Fprintf(&b, "      allow_responses: {max: %d, expires: %q}\n", p.Response.MaxMsgs, p.Response.Expires.String())
		}
		b.WriteString("    }}\n")
	}
	b.WriteString("  ]\n}\n")
	return b.String(), nil
}

func list(subjects []string) string {
	q := make([]string, len(subjects))
	for i, s := range subjects {
		q[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
