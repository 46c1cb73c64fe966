package accounts

import (
	"strings"
	"testing"

	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
)

func TestCheckPassword(t *testing.T) {
	for _, tc := range []struct {
		password, handle string
		code             pb.ErrorCode
	}{
		{"correct horse battery", "alice", 0},
		{"ÄÖÜäöüß!", "alice", 0}, // 8 characters, 15 bytes
		{strings.Repeat("ab", MaxPassword/2), "alice", 0},
		{"short", "alice", pb.ErrorCode_ERROR_CODE_WEAK_PASSWORD},
		{"1234567", "alice", pb.ErrorCode_ERROR_CODE_WEAK_PASSWORD},
		{"ALICE.IN.CHAINS", "alice.in.chains", pb.ErrorCode_ERROR_CODE_WEAK_PASSWORD},
		{"xxxxxxxxxx", "alice", pb.ErrorCode_ERROR_CODE_WEAK_PASSWORD},
		{"ääääääääää", "alice", pb.ErrorCode_ERROR_CODE_WEAK_PASSWORD},
		{"PassWord123", "alice", pb.ErrorCode_ERROR_CODE_WEAK_PASSWORD},
		{"qwertyuiop", "alice", pb.ErrorCode_ERROR_CODE_WEAK_PASSWORD},
		{strings.Repeat("ab", MaxPassword/2) + "c", "alice", pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT},
	} {
		var got pb.ErrorCode
		if e := checkPassword(tc.password, tc.handle); e != nil {
			got = e.Code
		}
		if got != tc.code {
			t.Errorf("checkPassword(%q, %q) = %q, want %q", tc.password, tc.handle, got, tc.code)
		}
	}
}

var testParams = HashParams{Memory: 64, Iterations: 1, Threads: 1}

func TestHashPassword(t *testing.T) {
	h := hashPassword("correct horse battery", testParams)
	if !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("hash %q does not carry its parameters", h)
	}
	if h2 := hashPassword("correct horse battery", testParams); h2 == h {
		t.Fatal("two hashes of one password are equal: no salt")
	}
	for password, want := range map[string]bool{"correct horse battery": true, "correct horse batter": false, "": false} {
		if ok, err := checkHash(h, password); err != nil || ok != want {
			t.Errorf("checkHash(%q) = %v, %v; want %v", password, ok, err, want)
		}
	}
	// Verification reads the parameters from the hash, not the config.
	if ok, err := checkHash(hashPassword("pw", DefaultHashParams), "pw"); err != nil || !ok {
		t.Fatalf("hash with the default parameters: %v, %v", ok, err)
	}
	for _, bad := range []string{
		"", "plain", "$argon2i$v=19$m=64,t=1,p=1$c2FsdA$a2V5",
		"$argon2id$v=18$m=64,t=1,p=1$c2FsdA$a2V5",
		"$argon2id$v=19$m=64,t=0,p=1$c2FsdA$a2V5",
		"$argon2id$v=19$m=64,t=1,p=1$!!$a2V5",
		"$argon2id$v=19$m=64,t=1,p=1$c2FsdA$",
	} {
		if _, err := checkHash(bad, "pw"); err == nil {
			t.Errorf("checkHash accepted %q", bad)
		}
	}
}

func TestNormalizeHandle(t *testing.T) {
	for in, want := range map[string]string{"Alice": "alice", "bob.builder_2": "bob.builder_2", "ABC": "abc"} {
		if got, e := normalizeHandle(in); e != nil || got != want {
			t.Errorf("normalizeHandle(%q) = %q, %v; want %q", in, got, e, want)
		}
	}
	for _, bad := range []string{"", "ab", strings.Repeat("a", 33), "a b", "al!ce", "ålice", "a-b"} {
		if got, e := normalizeHandle(bad); e == nil || e.Code != pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT {
			t.Errorf("normalizeHandle(%q) = %q, %v; want INVALID_ARGUMENT", bad, got, e)
		}
	}
}

func TestNewID(t *testing.T) {
	id := newID("u")
	if len(id) != 21 || id[0] != 'u' || strings.ToLower(id) != id || strings.ContainsAny(id, ".*> \t") {
		t.Fatalf("newID = %q", id)
	}
	if newID("u") == id {
		t.Fatal("two ids are equal")
	}
}
