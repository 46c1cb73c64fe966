package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

func testSigner(t testing.TB) *Signer {
	t.Helper()
	s, err := NewSigner(testKey, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// sign makes a token with any method, key and claims, as a forger would.
func sign(t testing.TB, m jwt.SigningMethod, key any, claims jwt.Claims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func claims(sub, iss string, exp time.Time) jwtClaims {
	return jwtClaims{RegisteredClaims: jwt.RegisteredClaims{Subject: sub, Issuer: iss, ExpiresAt: jwt.NewNumericDate(exp)}, Session: "s1"}
}

func TestVerify(t *testing.T) {
	s := testSigner(t)
	good, exp, err := s.Issue("alice", "s1")
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.Verify(good)
	if err != nil || c.User != "alice" || c.SessionID != "s1" || !c.Expires.Equal(exp.Truncate(time.Second)) {
		t.Fatalf("issued token: %+v %v", c, err)
	}
	hour := time.Now().Add(time.Hour)
	for name, token := range map[string]string{
		"empty":          "",
		"garbage":        "a.b.c",
		"other key":      sign(t, jwt.SigningMethodHS256, []byte("another key, 32 bytes long......"), claims("alice", issuer, hour)),
		"HS512":          sign(t, jwt.SigningMethodHS512, testKey, claims("alice", issuer, hour)),
		"alg none":       sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims("alice", issuer, hour)),
		"expired":        sign(t, jwt.SigningMethodHS256, testKey, claims("alice", issuer, time.Now().Add(-time.Minute))),
		"no expiry":      sign(t, jwt.SigningMethodHS256, testKey, jwtClaims{RegisteredClaims: jwt.RegisteredClaims{Subject: "alice", Issuer: issuer}}),
		"other issuer":   sign(t, jwt.SigningMethodHS256, testKey, claims("alice", "someone", hour)),
		"no subject":     sign(t, jwt.SigningMethodHS256, testKey, claims("", issuer, hour)),
		"signature only": good[strings.LastIndexByte(good, '.'):],
	} {
		if c, err := s.Verify(token); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("%s: accepted as %+v (%v)", name, c, err)
		}
	}
}

// FuzzVerify gives the verifier arbitrary tokens. It must never panic;
// what it refuses is ErrInvalidToken, and what it accepts must be a
// token this key signed with HS256, checked here without the JWT library:
// its signature is the HMAC-SHA256 of its first two parts, and its claims
// are the ones Verify returns, unexpired, from the issuer "parley".
func FuzzVerify(f *testing.F) {
	s := testSigner(f)
	hour := time.Now().Add(time.Hour)
	for _, seed := range []string{
		"", "a.b.c", "...", "eyJhbGciOiJIUzI1NiJ9.e30.",
		sign(f, jwt.SigningMethodHS512, testKey, claims("alice", issuer, hour)),
		sign(f, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims("alice", issuer, hour)),
		sign(f, jwt.SigningMethodHS256, testKey, claims("alice", issuer, time.Now().Add(-time.Minute))),
		sign(f, jwt.SigningMethodHS256, testKey, claims("alice", "someone", hour)),
		sign(f, jwt.SigningMethodHS256, testKey, claims("", issuer, hour)),
	} {
		f.Add(seed)
	}
	for _, session := range []string{"", "s1"} {
		token, _, err := s.Issue("alice", session)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(token)
	}
	f.Fuzz(func(t *testing.T, token string) {
		c, err := s.Verify(token)
		if err != nil {
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("refused with %v, not ErrInvalidToken", err)
			}
			return
		}
		checkAccepted(t, token, c)
	})
}

// checkAccepted checks an accepted token independently of the JWT library.
func checkAccepted(t *testing.T, token string, c Claims) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("accepted %q: %d parts", token, len(parts))
	}
	var header struct {
		Alg string `json:"alg"`
	}
	var payload struct {
		Iss string  `json:"iss"`
		Sub string  `json:"sub"`
		Sid string  `json:"sid"`
		Exp float64 `json:"exp"`
	}
	h, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	p, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	sig, err3 := base64.RawURLEncoding.DecodeString(parts[2])
	if err := errors.Join(err1, err2, err3, json.Unmarshal(h, &header), json.Unmarshal(p, &payload)); err != nil {
		t.Fatalf("accepted %q: %v", token, err)
	}
	mac := hmac.New(sha256.New, testKey)
	mac.Write([]byte(parts[0] + "." + parts[1]))
	if header.Alg != "HS256" || !hmac.Equal(sig, mac.Sum(nil)) {
		t.Fatalf("accepted %q: alg %q, not signed with the key", token, header.Alg)
	}
	if payload.Iss != issuer || payload.Sub == "" || payload.Sub != c.User || payload.Sid != c.SessionID {
		t.Fatalf("accepted %q with claims %+v as %+v", token, payload, c)
	}
	if !c.Expires.After(time.Now().Add(-time.Minute)) {
		t.Fatalf("accepted %q, expired at %v", token, c.Expires)
	}
}
