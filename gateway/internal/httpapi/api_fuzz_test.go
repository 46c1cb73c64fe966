package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
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
	"github.com/parley-chat/parley/pkg/store"
)

// bodyRoute is an API route that decodes a JSON request body.
type bodyRoute struct {
	method, path string
	authed       bool
	ok           int      // its status when the body is accepted
	calls        int64    // then made to the store, processor or accounts service
	seeds        []string // realistic bodies
}

// bodyRoutes are every route that reads a body with decodeBody.
var bodyRoutes = []bodyRoute{
	{"POST", "/api/v1/dev/tokens", false, http.StatusOK, 0, []string{`{"user":"alice"}`}},
	{"POST", "/api/v1/rooms", true, http.StatusCreated, 1, []string{`{"name":"general","members":["bob","carol"]}`, `{"name":"news","kind":"channel"}`}},
	{"POST", "/api/v1/direct", true, http.StatusCreated, 1, []string{`{"user":"bob"}`}},
	{"POST", "/api/v1/rooms/r1/members", true, http.StatusOK, 1, []string{`{"users":["bob","carol"]}`}},
	{"PUT", "/api/v1/rooms/r1/members/bob/role", true, http.StatusOK, 1, []string{`{"role":"admin"}`}},
	{"PATCH", "/api/v1/rooms/r1", true, http.StatusOK, 1, []string{`{"name":"renamed \u00e9"}`}},
	{"POST", "/api/v1/accounts", false, http.StatusCreated, 1, []string{`{"handle":"alice","password":"correct horse battery","display_name":"Alice"}`}},
	{"POST", "/api/v1/sessions", false, http.StatusOK, 1, []string{`{"handle":"alice","password":"correct horse battery"}`}},
	{"POST", "/api/v1/sessions/refresh", false, http.StatusOK, 1, []string{`{"refresh_token":"u1.s1.c2VjcmV0"}`}},
	{"PUT", "/api/v1/accounts/me/password", true, http.StatusNoContent, 1, []string{`{"current_password":"correct horse battery","new_password":"battery staple horse"}`}},
	{"POST", "/api/v1/friends/requests", true, http.StatusCreated, 1, []string{`{"user":"bob"}`}},
}

// roomsOnly is a store that creates and finds every room, for the API
// routes that call it; anything else it is asked panics.
type roomsOnly struct {
	Store
	calls *atomic.Int64
}

func (s roomsOnly) CreateRoom(context.Context, store.Room, []store.Member) error {
	s.calls.Add(1)
	return nil
}

func (s roomsOnly) Room(_ context.Context, id string) (store.Room, error) {
	s.calls.Add(1)
	return store.Room{ID: id}, nil
}

// apiHarness is a gateway's HTTP API on an embedded NATS server, with a
// fake processor and accounts service that accept every request, and a
// count of the calls that reached them or the store.
type apiHarness struct {
	h     http.Handler
	token string // alice's
	calls atomic.Int64
	bad   atomic.Int64 // calls the processor or service could not read
}

func newAPIHarness(t testing.TB) *apiHarness {
	t.Helper()
	a := &apiHarness{}
	nc := bustest.Connect(t)
	// The processor stores every room change as seq 1.
	answer := func(m *nats.Msg) {
		a.calls.Add(1)
		in := new(pb.InboundMessage)
		if err := proto.Unmarshal(m.Data, in); err != nil {
			a.bad.Add(1)
		}
		res, _ := proto.Marshal(&pb.SendResult{Room: in.Room, ClientMsgId: in.ClientMsgId, Seq: 1})
		_ = m.Respond(res)
	}
	// The accounts service answers every call with an empty result.
	accountsService := func(m *nats.Msg) {
		a.calls.Add(1)
		if !json.Valid(m.Data) {
			a.bad.Add(1)
		}
		_ = m.Respond([]byte(`{"result":{}}`))
	}
	for subject, h := range map[string]nats.MsgHandler{"parley.send.>": answer, "parley.accounts.>": accountsService, "parley.friends.>": accountsService} {
		if _, err := nc.Subscribe(subject, h); err != nil {
			t.Fatal(err)
		}
	}
	signer, err := auth.NewSigner(bytes.Repeat([]byte("k"), 32), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	out := outbox.New(nc, sequencer.Config{})
	if err := out.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(out.Close)
	users := follow.New(nc, nil, nil, zap.NewNop(), follow.Config{})
	api := New(Deps{Store: roomsOnly{calls: &a.calls}, Accounts: accounts.NewClient(nc), Users: users, Sends: out, Verifier: signer, Issuer: signer},
		zap.NewNop(), Config{DevTokens: true, RequestTimeout: 5 * time.Second, Limits: ratelimit.Config{SendRate: -1, RequestRate: -1}})
	rt := NewRouter(api.Fail)
	api.Routes(rt)
	if a.token, _, err = signer.Issue("alice", "s1"); err != nil {
		t.Fatal(err)
	}
	a.h = rt
	return a
}

// do sends body to a route and returns the answer and how many calls
// reached the store, the processor or the accounts service.
func (a *apiHarness) do(rt bodyRoute, body []byte) (*httptest.ResponseRecorder, int64) {
	r := httptest.NewRequest(rt.method, rt.path, bytes.NewReader(body))
	if rt.authed {
		r.Header.Set("Authorization", "Bearer "+a.token)
	}
	w := httptest.NewRecorder()
	before := a.calls.Load()
	a.h.ServeHTTP(w, r)
	return w, a.calls.Load() - before
}

// checkAPIError checks that an answer is the API's JSON error with code.
func checkAPIError(t *testing.T, w *httptest.ResponseRecorder, code string) {
	t.Helper()
	var e struct {
		Error struct{ Code, Message string }
	}
	dec := json.NewDecoder(w.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil || e.Error.Code != code || e.Error.Message == "" || dec.More() {
		t.Fatalf("HTTP %d %q (%v), want the JSON error %s", w.Code, w.Body, err, code)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("HTTP %d with Content-Type %q", w.Code, ct)
	}
}

// The realistic bodies are accepted, so the fuzzer starts from the paths
// past decoding; a body with a field the request has not is refused.
func TestAPIBodySeeds(t *testing.T) {
	a := newAPIHarness(t)
	for _, rt := range bodyRoutes {
		for _, s := range rt.seeds {
			if w, calls := a.do(rt, []byte(s)); w.Code != rt.ok || calls != rt.calls {
				t.Errorf("%s %s %s: HTTP %d %q after %d calls, want %d after %d", rt.method, rt.path, s, w.Code, w.Body, calls, rt.ok, rt.calls)
			}
		}
		w, _ := a.do(rt, []byte(`{"unknown":1}`))
		if w.Code != http.StatusBadRequest {
			t.Errorf("%s %s with an unknown field: HTTP %d", rt.method, rt.path, w.Code)
		}
	}
}

// FuzzAPIBody sends arbitrary bodies to the real handlers of every API
// route that decodes one (route picks it), on a gateway whose processor,
// accounts service and store accept everything. Whatever the body, the
// answer is the route's success, having called one of them once, or a 400
// INVALID_ARGUMENT JSON error, having called none; and a body that does
// not even begin with a JSON value is always a 400.
func FuzzAPIBody(f *testing.F) {
	for i, rt := range bodyRoutes {
		for _, s := range append(rt.seeds, ``, `{}`, `null`, `[]`, `{"unknown":1}`, `{"user":`, `{"name":"a"} trailing`) {
			f.Add(uint8(i), []byte(s))
		}
	}
	a := newAPIHarness(f)
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		rt := bodyRoutes[int(route)%len(bodyRoutes)]
		w, calls := a.do(rt, body)
		var first json.RawMessage
		isJSON := json.NewDecoder(bytes.NewReader(body)).Decode(&first) == nil
		switch {
		case w.Code == http.StatusBadRequest:
			checkAPIError(t, w, "INVALID_ARGUMENT")
			if calls != 0 {
				t.Fatalf("%s %s %q: 400 after %d calls on", rt.method, rt.path, body, calls)
			}
		case !isJSON:
			t.Fatalf("%s %s %q: HTTP %d %q for a body that is not JSON", rt.method, rt.path, body, w.Code, w.Body)
		case w.Code != rt.ok:
			t.Fatalf("%s %s %q: HTTP %d %q, want %d or 400", rt.method, rt.path, body, w.Code, w.Body, rt.ok)
		case calls != rt.calls || a.bad.Load() != 0:
			t.Fatalf("%s %s %q: HTTP %d after %d calls on", rt.method, rt.path, body, w.Code, calls)
		case w.Code != http.StatusNoContent && !json.Valid(w.Body.Bytes()):
			t.Fatalf("%s %s %q: HTTP %d with body %q", rt.method, rt.path, body, w.Code, w.Body)
		}
	})
}
