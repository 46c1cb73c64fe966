package httpapi

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// A body is one JSON value: anything after it but white space is refused,
// as are unknown fields.
func TestDecodeBodyTakesOneValue(t *testing.T) {
	for body, ok := range map[string]bool{
		`{"name":"a"}`:          true,
		"{\"name\":\"a\"}\n \t": true,
		`{"name":"a"} trailing`: false,
		`{"name":"a"}{}`:        false,
		`{"name":"a","x":1}`:    false,
		``:                      false,
	} {
		var v struct {
			Name string `json:"name"`
		}
		err := decodeBody(httptest.NewRequest("POST", "/api/v1/rooms", strings.NewReader(body)), &v)
		if (err == nil) != ok {
			t.Errorf("%q: error %v, want accepted %v", body, err, ok)
		}
	}
}
