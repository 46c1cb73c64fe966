// Package mediaclient uploads files to a Parley gateway from Go: small
// files in one request, larger ones with the resumable protocol (see
// schemas/README.md, "Media"), resuming from the server's offset after a
// dropped connection, with progress reports.
package mediaclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Upload is the server's description of an upload (gateway/media.Upload).
type Upload struct {
	ID          string `json:"id"`
	URL         string `json:"url"`
	State       string `json:"state"`
	Name        string `json:"name,omitempty"`
	Kind        string `json:"kind,omitempty"`
	ContentType string `json:"content_type,omitempty"`
	Size        int64  `json:"size"`
	Width       int    `json:"width,omitempty"`
	Height      int    `json:"height,omitempty"`
	DurationMS  int64  `json:"duration_ms,omitempty"`
	ThumbURL    string `json:"thumb_url,omitempty"`
}

// Error is a refusal by the server, with its documented code.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message) }

// Options of an upload; zero fields take the defaults.
type Options struct {
	// OneShotMax: files up to this size go in one request (default 1 MiB).
	OneShotMax int64
	// ChunkSize: bytes per PATCH (default 8 MiB).
	ChunkSize int64
	// Retries: how many dropped connections in a row to resume from
	// (default 5), waiting RetryWait (default 1 s) before each.
	Retries   int
	RetryWait time.Duration
	// OnProgress is called with the bytes the server holds.
	OnProgress func(sent, total int64)
}

// Client uploads to one gateway as one user.
type Client struct {
	HTTP  *http.Client // default http.DefaultClient
	Base  string       // e.g. "http://localhost:8080"
	Token string       // access token
}

// Upload sends size bytes of r under name.
func (c *Client) Upload(ctx context.Context, name string, r io.ReaderAt, size int64, o Options) (Upload, error) {
	if o.OneShotMax <= 0 {
		o.OneShotMax = 1 << 20
	}
	if o.ChunkSize <= 0 {
		o.ChunkSize = 8 << 20
	}
	if o.Retries <= 0 {
		o.Retries = 5
	}
	if o.RetryWait <= 0 {
		o.RetryWait = time.Second
	}
	if o.OnProgress == nil {
		o.OnProgress = func(int64, int64) {}
	}
	q := "?name=" + url.QueryEscape(name)
	if size <= o.OneShotMax {
		var u Upload
		_, err := c.do(ctx, "POST", "/api/v1/media"+q, io.NewSectionReader(r, 0, size), size, nil, http.StatusCreated, &u)
		if err == nil {
			o.OnProgress(size, size)
		}
		return u, err
	}
	var u Upload
	_, err := c.do(ctx, "POST", "/api/v1/uploads"+q, nil, 0, map[string]string{"Upload-Length": strconv.FormatInt(size, 10)}, http.StatusCreated, &u)
	if err != nil {
		return u, err
	}
	path := "/api/v1/uploads/" + u.ID
	var off int64
	for failures := 0; ; {
		n := min(o.ChunkSize, size-off)
		hdr := map[string]string{"Upload-Offset": strconv.FormatInt(off, 10), "Content-Type": "application/offset+octet-stream"}
		resp, err := c.do(ctx, "PATCH", path, io.NewSectionReader(r, off, n), n, hdr, 0, &u)
		var apiErr *Error
		switch {
		case err == nil && resp.StatusCode == http.StatusOK:
			o.OnProgress(size, size)
			return u, nil
		case err == nil:
			failures = 0
			if off, err = strconv.ParseInt(resp.Header.Get("Upload-Offset"), 10, 64); err != nil {
				return u, fmt.Errorf("PATCH answer without Upload-Offset: %w", err)
			}
			o.OnProgress(off, size)
			continue
		case errors.As(err, &apiErr) && apiErr.Code != "OFFSET_MISMATCH":
			return u, err
		case ctx.Err() != nil:
			return u, ctx.Err()
		}
		// The connection dropped (or the offsets disagree): ask the server
		// what it holds and go on from there.
		if failures++; failures > o.Retries {
			return u, err
		}
		select {
		case <-ctx.Done():
			return u, ctx.Err()
		case <-time.After(o.RetryWait):
		}
		if off, err = c.offset(ctx, path); err != nil {
			return u, err
		}
		o.OnProgress(off, size)
	}
}

// offset asks the server how much of the upload it holds.
func (c *Client) offset(ctx context.Context, path string) (int64, error) {
	resp, err := c.do(ctx, "HEAD", path, nil, 0, nil, http.StatusOK, nil)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(resp.Header.Get("Upload-Offset"), 10, 64)
}

// do sends a request; an answer of status want (any 2xx when 0) is
// decoded into out, any other becomes an *Error.
func (c *Client) do(ctx context.Context, method, path string, body io.Reader, n int64, hdr map[string]string, want int, out any) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.Base, "/")+path, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.ContentLength = n
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return resp, err
	}
	if (want != 0 && resp.StatusCode != want) || resp.StatusCode >= 300 {
		var e struct {
			Error struct{ Code, Message string }
		}
		_ = json.Unmarshal(b, &e)
		return resp, &Error{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message}
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return resp, fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	return resp, nil
}
