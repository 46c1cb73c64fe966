// Package protocol encodes and decodes Parley's WebSocket frames (schema in
// schemas/parley/v1/protocol.proto) in its two subprotocols.
package protocol

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
)

// WebSocket subprotocols.
const (
	SubprotocolJSON  = "parley.v1.json"  // protojson text frames
	SubprotocolProto = "parley.v1.proto" // protobuf binary frames
)

// Subprotocols lists the supported subprotocols, preferred first.
var Subprotocols = []string{SubprotocolProto, SubprotocolJSON}

// ErrMalformed wraps every decoding failure.
var ErrMalformed = errors.New("malformed frame")

// Codec turns frames into bytes and back for one subprotocol.
type Codec interface {
	Subprotocol() string
	// Binary reports whether frames travel as binary (else text) messages.
	Binary() bool
	DecodeClient(data []byte, f *pb.ClientFrame) error
	EncodeClient(f *pb.ClientFrame) ([]byte, error)
	DecodeServer(data []byte, f *pb.ServerFrame) error
	EncodeServer(f *pb.ServerFrame) ([]byte, error)
	// EncodeMessageEvent encodes a pushed Message event from the Message's
	// protobuf encoding, as stored on the bus.
	EncodeMessageEvent(rawMessage []byte) ([]byte, error)
}

// ForSubprotocol returns the codec of a subprotocol name, or nil.
func ForSubprotocol(name string) Codec {
	switch name {
	case SubprotocolJSON:
		return JSON
	case SubprotocolProto:
		return Proto
	}
	return nil
}

var (
	// JSON is the parley.v1.json codec.
	JSON Codec = jsonCodec{}
	// Proto is the parley.v1.proto codec.
	Proto Codec = protoCodec{}
)

type protoCodec struct{}

func (protoCodec) Subprotocol() string { return SubprotocolProto }
func (protoCodec) Binary() bool        { return true }

func (protoCodec) DecodeClient(data []byte, f *pb.ClientFrame) error {
	if err := proto.Unmarshal(data, f); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return nil
}

func (protoCodec) EncodeClient(f *pb.ClientFrame) ([]byte, error) { return proto.Marshal(f) }

func (protoCodec) DecodeServer(data []byte, f *pb.ServerFrame) error {
	if err := proto.Unmarshal(data, f); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return nil
}

func (protoCodec) EncodeServer(f *pb.ServerFrame) ([]byte, error) { return proto.Marshal(f) }

// messageField is ServerFrame.message's field number; a pushed event is just
// that field, so it is built around the stored bytes without re-encoding.
const messageField = 7

func (protoCodec) EncodeMessageEvent(raw []byte) ([]byte, error) {
	b := make([]byte, 0, len(raw)+6)
	b = protowire.AppendTag(b, messageField, protowire.BytesType)
	b = protowire.AppendBytes(b, raw)
	return b, nil
}

type jsonCodec struct{}

var (
	jsonMarshal = protojson.MarshalOptions{UseProtoNames: true}
	// Unknown fields are ignored so newer clients work with older servers;
	// a frame with no known request is then answered UNKNOWN_FRAME.
	jsonUnmarshal = protojson.UnmarshalOptions{DiscardUnknown: true}
)

func (jsonCodec) Subprotocol() string { return SubprotocolJSON }
func (jsonCodec) Binary() bool        { return false }

func (jsonCodec) DecodeClient(data []byte, f *pb.ClientFrame) error {
	if err := jsonUnmarshal.Unmarshal(data, f); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return nil
}

func (jsonCodec) EncodeClient(f *pb.ClientFrame) ([]byte, error) { return jsonMarshal.Marshal(f) }

func (jsonCodec) DecodeServer(data []byte, f *pb.ServerFrame) error {
	if err := jsonUnmarshal.Unmarshal(data, f); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return nil
}

func (jsonCodec) EncodeServer(f *pb.ServerFrame) ([]byte, error) { return jsonMarshal.Marshal(f) }

func (c jsonCodec) EncodeMessageEvent(raw []byte) ([]byte, error) {
	m := new(pb.Message)
	if err := proto.Unmarshal(raw, m); err != nil {
		return nil, err
	}
	return c.EncodeServer(&pb.ServerFrame{Kind: &pb.ServerFrame_Message{Message: m}})
}
