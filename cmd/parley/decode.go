package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/parley-chat/parley/internal/config"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
)

// payloadTypes are the protobuf messages Parley puts on NATS, by the name
// `parley decode --type` takes.
var payloadTypes = map[string]func() proto.Message{
	"message":        func() proto.Message { return new(pb.Message) },
	"frame":          func() proto.Message { return new(pb.ServerFrame) },
	"presence":       func() proto.Message { return new(pb.PresenceEvent) },
	"notification":   func() proto.Message { return new(pb.Notification) },
	"inbound":        func() proto.Message { return new(pb.InboundMessage) },
	"result":         func() proto.Message { return new(pb.SendResult) },
	"history-query":  func() proto.Message { return new(pb.HistoryQuery) },
	"history-result": func() proto.Message { return new(pb.HistoryResult) },
}

// subjectTypes maps subject patterns (path.Match, one token per *) to the
// payload they carry; the first match wins.
var subjectTypes = []struct{ pattern, typ string }{
	{"chat.msg.*", "message"}, // CHAT_MSG: a room's stored messages
	{"room.*.ev", "message"},  // the same, republished once stored
	{"room.*.sig", "frame"},   // typing, receipts, online counts
	{"parley.gw.*.users", "frame"},
	{"parley.send.*.*", "inbound"}, // a gateway's send request to a processor
	{"presence.*", "presence"},
	{"notify.*", "notification"},
}

// runDecode is `parley decode`: it reads one NATS message payload on stdin
// and prints it as JSON (protojson, the field names of the wire protocol),
// for `nats sub 'room.*.ev' --translate 'parley decode --subject {{Subject}}'`.
func runDecode(_ context.Context, args []string) error {
	return decode(args, os.Stdin, os.Stdout)
}

func decode(args []string, in io.Reader, out io.Writer) error {
	var subject, typ string
	f := config.NewFlags("parley decode")
	f.String(&subject, "subject", "", "the message's subject, to choose its type (nats --translate fills in {{Subject}})")
	f.String(&typ, "type", "", "the payload type, whatever the subject: "+strings.Join(typeNames(), ", ")+" (default: by subject, else message)")
	if err := f.Parse(args); err != nil {
		return err
	}
	if typ == "" {
		typ = typeOf(subject)
	}
	newMsg, ok := payloadTypes[typ]
	if !ok {
		return fmt.Errorf("decode: unknown --type %q (want one of %s)", typ, strings.Join(typeNames(), ", "))
	}
	data, err := io.ReadAll(in)
	if err != nil {
		return err
	}
	m := newMsg()
	if err := proto.Unmarshal(data, m); err != nil {
		return fmt.Errorf("decode: not a parley.v1 %s (%d bytes): %w", typ, len(data), err)
	}
	text, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
	if err != nil {
		return err
	}
	// protojson varies its spacing on purpose; one line, the same for the
	// same message, reads and greps better.
	var line bytes.Buffer
	if err := json.Compact(&line, text); err != nil {
		return err
	}
	line.WriteByte('\n')
	_, err = line.WriteTo(out)
	return err
}

func typeOf(subject string) string {
	for _, s := range subjectTypes {
		if ok, _ := path.Match(s.pattern, subject); ok && strings.Count(s.pattern, ".") == strings.Count(subject, ".") {
			return s.typ
		}
	}
	return "message"
}

func typeNames() []string {
	names := make([]string, 0, len(payloadTypes))
	for n := range payloadTypes {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
