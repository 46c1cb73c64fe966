package protocol

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
)

// Every code has an HTTP status and is documented in schemas/README.md;
// a code added to the enum without both fails here.
func TestEveryCodeHasAStatusAndIsDocumented(t *testing.T) {
	readme, err := os.ReadFile("../../schemas/README.md")
	if err != nil {
		t.Fatal(err)
	}
	for n := range pb.ErrorCode_name {
		code := pb.ErrorCode(n)
		if code == pb.ErrorCode_ERROR_CODE_UNSPECIFIED {
			continue
		}
		if _, ok := httpStatus[code]; !ok {
			t.Errorf("%v has no HTTP status", code)
		}
		if !strings.Contains(string(readme), "`"+code.String()+"`") {
			t.Errorf("%v is not in schemas/README.md's error codes", code)
		}
	}
	if s := (&Error{Code: pb.ErrorCode(999)}).HTTPStatus(); s != 502 {
		t.Errorf("an unknown code's status %d, want 502", s)
	}
}

// The JSON encoding names codes without their prefix, and reads back the
// same Error; a code from a newer peer reads as UNSPECIFIED with its name
// kept.
func TestErrorJSON(t *testing.T) {
	e := &Error{Code: pb.ErrorCode_ERROR_CODE_RATE_LIMITED, Message: "slow down", RetryAfter: 1500 * time.Millisecond}
	b, err := json.Marshal(e)
	if err != nil || string(b) != `{"code":"RATE_LIMITED","message":"slow down","retry_after_ms":1500}` {
		t.Fatalf("encoded %s %v", b, err)
	}
	var back Error
	if err := json.Unmarshal(b, &back); err != nil || back != *e {
		t.Fatalf("decoded %+v %v, want %+v", back, err, *e)
	}
	if err := json.Unmarshal([]byte(`{"code":"FROM_THE_FUTURE","message":"m"}`), &back); err != nil ||
		back.Code != pb.ErrorCode_ERROR_CODE_UNSPECIFIED || back.Message != "FROM_THE_FUTURE: m" {
		t.Fatalf("unknown code decoded as %+v %v", back, err)
	}
}
