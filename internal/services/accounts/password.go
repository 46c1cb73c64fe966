package accounts

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
	"github.com/parley-chat/parley/pkg/protocol"
	"golang.org/x/crypto/argon2"
)

// Password length limits, in bytes of UTF-8 (JSON strings always are).
const (
	MinPassword = 8
	MaxPassword = 128
)

// commonPasswords are among the most used passwords of at least
// MinPassword bytes; shorter ones are refused anyway. Compared lower-case.
var commonPasswords = map[string]bool{
	"password": true, "password1": true, "password12": true, "password123": true, "passw0rd": true,
	"12345678": true, "123456789": true, "1234567890": true, "87654321": true, "12341234": true,
	"qwertyui": true, "qwertyuiop": true, "qwerty123": true, "1q2w3e4r": true, "1qaz2wsx": true,
	"zaq12wsx": true, "asdfghjk": true, "abcd1234": true, "abc12345": true, "iloveyou": true,
	"sunshine": true, "princess": true, "football": true, "baseball": true, "superman": true,
	"trustno1": true, "letmein1": true, "welcome1": true, "whatever": true, "starwars": true,
	"michelle": true, "corvette": true, "computer": true, "internet": true, "changeme": true,
}

// checkPassword returns a *protocol.Error saying what is wrong with password for
// an account with handle, or nil.
func checkPassword(password, handle string) *protocol.Error {
	switch {
	case len(password) > MaxPassword:
		return protocol.Reject(pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, "password: at most %d bytes", MaxPassword)
	case len(password) < MinPassword:
		return protocol.Reject(pb.ErrorCode_ERROR_CODE_WEAK_PASSWORD, "password: at least %d bytes", MinPassword)
	case strings.EqualFold(password, handle):
		return protocol.Reject(pb.ErrorCode_ERROR_CODE_WEAK_PASSWORD, "password: must not be the handle")
	case oneRune(password):
		return protocol.Reject(pb.ErrorCode_ERROR_CODE_WEAK_PASSWORD, "password: must not repeat one character")
	case commonPasswords[strings.ToLower(password)]:
		return protocol.Reject(pb.ErrorCode_ERROR_CODE_WEAK_PASSWORD, "password: too common")
	}
	return nil
}

func oneRune(s string) bool {
	first, _ := utf8.DecodeRuneInString(s)
	return strings.Trim(s, string(first)) == ""
}

// HashParams are argon2id's costs. Verification reads them from each
// stored hash, so they can change without invalidating old passwords.
type HashParams struct {
	Memory     uint32 // KiB
	Iterations uint32
	Threads    uint8
}

// DefaultHashParams follow OWASP's minimum for argon2id (19 MiB, 2
// passes, 1 lane): about 30 ms per hash on one core.
var DefaultHashParams = HashParams{Memory: 19 * 1024, Iterations: 2, Threads: 1}

const (
	saltLen = 16
	keyLen  = 32
)

var b64 = base64.RawStdEncoding

// hashPassword returns the PHC string form of password's argon2id hash:
// $argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash>.
func hashPassword(password string, p HashParams) string {
	salt := make([]byte, saltLen)
	_, _ = rand.Read(salt)
	key := argon2.IDKey([]byte(password), salt, p.Iterations, p.Memory, p.Threads, keyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Iterations, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

var errBadHash = errors.New("accounts: malformed password hash")

// checkHash reports whether password matches encoded, comparing in
// constant time.
func checkHash(encoded, password string) (bool, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, errBadHash
	}
	var version int
	var p HashParams
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false, errBadHash
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Iterations, &p.Threads); err != nil || p.Iterations == 0 || p.Threads == 0 {
		return false, errBadHash
	}
	salt, err1 := b64.DecodeString(parts[4])
	key, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(key) == 0 {
		return false, errBadHash
	}
	got := argon2.IDKey([]byte(password), salt, p.Iterations, p.Memory, p.Threads, uint32(len(key)))
	return subtle.ConstantTimeCompare(got, key) == 1, nil
}
