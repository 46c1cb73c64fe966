// Package catalog keeps what Parley knows about each upload — owner,
// sniffed type, size, state, the rooms and messages it was sent in — in a
// JetStream key-value bucket, so any gateway can serve any upload and
// gateways hold no state.
//
// Invariants:
//   - An upload id is 128 random bits: ids cannot be guessed.
//   - Every change of a record is a compare-and-set on its revision, so
//     concurrent gateways and the derive worker never lose each other's
//     updates.
//   - Refs lists the (room, message) pairs the upload was sent in; the
//     per-message index m.<room>.<msg> lists the uploads of a message, so
//     deleting the message finds them.
//   - A user's quota counts the bytes of their uploads that were never
//     sent: reserved when an upload starts, released when it is first sent
//     or collected.
package catalog

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/parley-chat/parley/internal/media/inspect"
)

// DefaultBucket holds the records.
const DefaultBucket = "PARLEY_MEDIA_META"

// State is where an upload is in its life.
type State string

const (
	// Uploading: a resumable upload still receiving bytes.
	Uploading State = "uploading"
	// Scanning: complete, waiting for the virus-scan hook's verdict; not
	// downloadable yet.
	Scanning State = "scanning"
	// Ready: downloadable by whoever may.
	Ready State = "ready"
	// Rejected: the scanner refused it; its bytes are gone.
	Rejected State = "rejected"
)

// Ref is one message an upload was sent in.
type Ref struct {
	Room string `json:"room"`
	Msg  string `json:"msg"`
}

// Record is one upload.
type Record struct {
	ID          string       `json:"id"`
	Owner       string       `json:"owner"`
	Name        string       `json:"name,omitempty"`
	State       State        `json:"state"`
	Size        int64        `json:"size"` // declared length while Uploading
	Offset      int64        `json:"offset,omitempty"`
	Parts       []Part       `json:"parts,omitempty"`    // received parts of a resumable upload, in order
	OneShot     bool         `json:"one_shot,omitempty"` // Uploading in one request: not resumable
	ContentType string       `json:"content_type,omitempty"`
	Kind        inspect.Kind `json:"kind,omitempty"`
	Risky       bool         `json:"risky,omitempty"`
	Width       int          `json:"width,omitempty"`
	Height      int          `json:"height,omitempty"`
	DurationMS  int64        `json:"duration_ms,omitempty"`
	// Thumb: a JPEG preview (image thumbnail or video poster frame) is
	// stored under ThumbKey(ID).
	Thumb    bool      `json:"thumb,omitempty"`
	Reserved int64     `json:"reserved,omitempty"` // quota bytes held until first sent
	Sent     bool      `json:"sent,omitempty"`
	Refs     []Ref     `json:"refs,omitempty"`
	Created  time.Time `json:"created"`
	Updated  time.Time `json:"updated"`
}

// Part is one stored piece of a resumable upload.
type Part struct {
	Key  string `json:"key"`
	Size int64  `json:"size"`
}

// Blob keys of an upload in the media.Store, all under id/ and none the
// parent of another (see media.Store).
func BlobKey(id string) string  { return id + "/file" }
func ThumbKey(id string) string { return id + "/thumb" }

// NewPartKey names a part received at offset; the random suffix keeps two
// concurrent writers at one offset from overwriting each other.
func NewPartKey(id string, offset int64) string {
	return id + "/part-" + strconv.FormatInt(offset, 10) + "-" + NewID()[:8]
}

// Errors, matched with errors.Is.
var (
	ErrNotFound = errors.New("catalog: no such upload")
	ErrQuota    = errors.New("catalog: per-user upload quota exceeded")
)

// NewID returns a fresh unguessable upload id (32 hex digits).
func NewID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ValidID tells whether s has the form of an id, before any lookup.
func ValidID(s string) bool {
	if len(s) != 32 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil && strings.ToLower(s) == s
}

// Catalog is the record store.
type Catalog struct {
	kv jetstream.KeyValue
}

// Config of the bucket: Replicas 1 single-node, 3 in a cluster. Bind only
// binds to the bucket, for roles whose NATS user may not create streams.
type Config struct {
	Bucket   string
	Replicas int
	Bind     bool
}

// Open creates the bucket when needed (unless cfg.Bind).
func Open(ctx context.Context, js jetstream.JetStream, cfg Config) (*Catalog, error) {
	if cfg.Bucket == "" {
		cfg.Bucket = DefaultBucket
	}
	if cfg.Bind {
		kv, err := js.KeyValue(ctx, cfg.Bucket)
		if err != nil {
			return nil, err
		}
		return &Catalog{kv: kv}, nil
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      cfg.Bucket,
		Description: "Parley media upload records",
		Replicas:    max(cfg.Replicas, 1),
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, err
	}
	return &Catalog{kv: kv}, nil
}

func recordKey(id string) string { return "u." + id }

// enc makes any string a valid KV key token.
func enc(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func msgKey(room, msg string) string { return "m." + enc(room) + "." + enc(msg) }

func quotaKey(user string) string { return "q." + enc(user) }

// Create stores a new record.
func (c *Catalog) Create(ctx context.Context, r Record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = c.kv.Create(ctx, recordKey(r.ID), b)
	return err
}

// Get loads a record.
func (c *Catalog) Get(ctx context.Context, id string) (Record, error) {
	r, _, err := c.get(ctx, id)
	return r, err
}

func (c *Catalog) get(ctx context.Context, id string) (Record, uint64, error) {
	e, err := c.kv.Get(ctx, recordKey(id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Record{}, 0, ErrNotFound
	}
	if err != nil {
		return Record{}, 0, err
	}
	var r Record
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		return Record{}, 0, fmt.Errorf("catalog: record %s: %w", id, err)
	}
	return r, e.Revision(), nil
}

// Update applies fn to the record and stores the result, retrying on a
// concurrent change; an error from fn aborts and is returned.
func (c *Catalog) Update(ctx context.Context, id string, fn func(*Record) error) (Record, error) {
	for {
		r, rev, err := c.get(ctx, id)
		if err != nil {
			return Record{}, err
		}
		if err := fn(&r); err != nil {
			return r, err
		}
		r.Updated = time.Now().UTC()
		b, err := json.Marshal(r)
		if err != nil {
			return r, err
		}
		_, err = c.kv.Update(ctx, recordKey(id), b, rev)
		if isConflict(err) {
			continue
		}
		return r, err
	}
}

// isConflict: the revision moved on (KV maps both single-node and
// replicated CAS failures to ErrKeyExists).
func isConflict(err error) bool { return errors.Is(err, jetstream.ErrKeyExists) }

// Delete removes a record; a missing one is not an error.
func (c *Catalog) Delete(ctx context.Context, id string) error {
	err := c.kv.Delete(ctx, recordKey(id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	return err
}

// IDs lists every upload id.
func (c *Catalog) IDs(ctx context.Context) ([]string, error) {
	l, err := c.kv.ListKeysFiltered(ctx, "u.*")
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ids []string
	for k := range l.Keys() {
		ids = append(ids, strings.TrimPrefix(k, "u."))
	}
	return ids, nil
}

// Reserve adds n bytes to user's unsent total, failing with ErrQuota when
// that would pass quota.
func (c *Catalog) Reserve(ctx context.Context, user string, n, quota int64) error {
	return c.addQuota(ctx, user, n, quota)
}

// Release gives n reserved bytes back.
func (c *Catalog) Release(ctx context.Context, user string, n int64) error {
	if n == 0 {
		return nil
	}
	return c.addQuota(ctx, user, -n, -1)
}

// Reserved is user's unsent total.
func (c *Catalog) Reserved(ctx context.Context, user string) (int64, error) {
	v, _, err := c.quota(ctx, user)
	return v, err
}

func (c *Catalog) quota(ctx context.Context, user string) (int64, uint64, error) {
	e, err := c.kv.Get(ctx, quotaKey(user))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, err
	}
	v, err := strconv.ParseInt(string(e.Value()), 10, 64)
	return v, e.Revision(), err
}

// addQuota adds delta, refusing to pass limit (limit < 0: no limit).
func (c *Catalog) addQuota(ctx context.Context, user string, delta, limit int64) error {
	for {
		v, rev, err := c.quota(ctx, user)
		if err != nil {
			return err
		}
		nv := max(v+delta, 0)
		if limit >= 0 && delta > 0 && nv > limit {
			return fmt.Errorf("%w: %d of %d bytes in unsent uploads", ErrQuota, v, limit)
		}
		val := []byte(strconv.FormatInt(nv, 10))
		if rev == 0 {
			_, err = c.kv.Create(ctx, quotaKey(user), val)
		} else {
			_, err = c.kv.Update(ctx, quotaKey(user), val, rev)
		}
		if isConflict(err) {
			continue
		}
		return err
	}
}

// AddRef records that upload id was sent in ref, releasing its quota
// reservation the first time, and indexes it under the message.
func (c *Catalog) AddRef(ctx context.Context, id string, ref Ref) (Record, error) {
	var released int64
	r, err := c.Update(ctx, id, func(r *Record) error {
		released = r.Reserved
		r.Reserved, r.Sent = 0, true
		if !slices.Contains(r.Refs, ref) {
			r.Refs = append(r.Refs, ref)
		}
		return nil
	})
	if err != nil {
		return r, err
	}
	if err := c.Release(ctx, r.Owner, released); err != nil {
		return r, err
	}
	return r, c.indexMessage(ctx, ref, id)
}

func (c *Catalog) indexMessage(ctx context.Context, ref Ref, id string) error {
	key := msgKey(ref.Room, ref.Msg)
	for {
		var ids []string
		var rev uint64
		e, err := c.kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return err
		default:
			if err := json.Unmarshal(e.Value(), &ids); err != nil {
				return err
			}
			rev = e.Revision()
		}
		if slices.Contains(ids, id) {
			return nil
		}
		b, _ := json.Marshal(append(ids, id))
		if rev == 0 {
			_, err = c.kv.Create(ctx, key, b)
		} else {
			_, err = c.kv.Update(ctx, key, b, rev)
		}
		if isConflict(err) {
			continue
		}
		return err
	}
}

// RemoveMessage forgets a message: it drops the message's index and its
// ref from each of its uploads, and returns the records of the uploads
// that no message references any more (the caller deletes their bytes).
func (c *Catalog) RemoveMessage(ctx context.Context, room, msg string) ([]Record, error) {
	key := msgKey(room, msg)
	e, err := c.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ids []string
	if err := json.Unmarshal(e.Value(), &ids); err != nil {
		return nil, err
	}
	ref := Ref{Room: room, Msg: msg}
	var orphans []Record
	for _, id := range ids {
		r, err := c.Update(ctx, id, func(r *Record) error {
			r.Refs = slices.DeleteFunc(r.Refs, func(x Ref) bool { return x == ref })
			return nil
		})
		switch {
		case errors.Is(err, ErrNotFound):
		case err != nil:
			return orphans, err
		case len(r.Refs) == 0:
			orphans = append(orphans, r)
		}
	}
	if err := c.kv.Delete(ctx, key); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return orphans, err
	}
	return orphans, nil
}
