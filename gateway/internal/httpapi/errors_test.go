package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/parley-chat/parley/gateway/internal/follow"
	"github.com/parley-chat/parley/gateway/internal/outbox"
	"github.com/parley-chat/parley/gateway/internal/ratelimit"
	"github.com/parley-chat/parley/internal/auth"
	"github.com/parley-chat/parley/internal/bus/bustest"
	"github.com/parley-chat/parley/internal/sequencer"
	"github.com/parley-chat/parley/internal/services/accounts"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
)

// The processor's and the accounts service's errors reach the caller with
// their code and the status of the one table; a code this gateway does not
// know answers 502.
func TestServiceErrorsKeepTheirCode(t *testing.T) {
	nc := bustest.Connect(t)
	// The processor refuses every room change; the accounts service
	// answers each call with the code named by the request's handle.
	if _, err := nc.Subscribe("parley.send.>", func(m *nats.Msg) {
		res, _ := proto.Marshal(&pb.SendResult{Error: &pb.Error{Code: pb.ErrorCode_ERROR_CODE_FORBIDDEN, Message: "owners only"}})
		_ = m.Respond(res)
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Subscribe(accounts.SubjectRegister, func(m *nats.Msg) {
		var req accounts.Register
		_ = json.Unmarshal(m.Data, &req)
		_ = m.Respond([]byte(`{"error":{"code":"` + req.Handle + `","message":"no"}}`))
	}); err != nil {
		t.Fatal(err)
	}
	out := outbox.New(nc, sequencer.Config{})
	if err := out.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(out.Close)
	signer, err := auth.NewSigner(bytes.Repeat([]byte("k"), 32), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	token, _, _ := signer.Issue("alice", "s1")
	api := New(Deps{Store: roomsOnly{calls: new(atomic.Int64)}, Accounts: accounts.NewClient(nc), Users: follow.New(nc, nil, nil, zap.NewNop(), follow.Config{}), Sends: out, Verifier: signer},
		zap.NewNop(), Config{RequestTimeout: 5 * time.Second, Limits: ratelimit.Config{SendRate: -1, RequestRate: -1}})
	rt := NewRouter(api.Fail)
	api.Routes(rt)

	for _, c := range []struct {
		method, path, body string
		status             int
		code               string
	}{
		{"PATCH", "/api/v1/rooms/r1", `{"name":"x"}`, 403, "FORBIDDEN"},
		{"POST", "/api/v1/accounts", `{"handle":"HANDLE_TAKEN"}`, 409, "HANDLE_TAKEN"},
		{"POST", "/api/v1/accounts", `{"handle":"WEAK_PASSWORD"}`, 400, "WEAK_PASSWORD"},
		{"POST", "/api/v1/accounts", `{"handle":"BLOCKED"}`, 403, "BLOCKED"},
		{"POST", "/api/v1/accounts", `{"handle":"FROM_A_NEWER_SERVICE"}`, 502, "UNSPECIFIED"},
	} {
		r := httptest.NewRequest(c.method, c.path, bytes.NewReader([]byte(c.body)))
		r.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		rt.ServeHTTP(w, r)
		var body struct {
			Error struct{ Code, Message string }
		}
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || w.Code != c.status || body.Error.Code != c.code {
			t.Errorf("%s %s %s: HTTP %d %s, want %d %s", c.method, c.path, c.body, w.Code, w.Body, c.status, c.code)
		}
	}
}
