package media

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"

	"github.com/parley-chat/parley/internal/media/catalog"
)

// Links are short-lived URLs a browser can use where it cannot send an
// Authorization header (<img src>, <video>, a download link). The info
// route hands them out after the usual access check: for the bytes on S3
// (types that are not risky) the backend's presigned URL, otherwise a
// gateway link
//
//	/api/v1/media/{id}/link/{file|thumb}?exp=<unix seconds>&sig=<HMAC-SHA256>
//
// signed with Config.LinkKey. Like a presigned URL, a link is its own
// authorization until it expires (Config.PresignTTL): a member removed
// meanwhile keeps a link already handed out for at most that long.

const (
	variantFile  = "file"
	variantThumb = "thumb"
)

func (h *Handler) sign(id, variant string, exp int64) string {
	m := hmac.New(sha256.New, h.cfg.LinkKey)
	m.Write([]byte(id + "\n" + variant + "\n" + strconv.FormatInt(exp, 10)))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (h *Handler) gatewayLink(id, variant string, exp int64) string {
	q := url.Values{"exp": {strconv.FormatInt(exp, 10)}, "sig": {h.sign(id, variant, exp)}}
	return URLPrefix + id + "/link/" + variant + "?" + q.Encode()
}

// addLinks fills u's links for rec, which the caller may read.
func (h *Handler) addLinks(ctx context.Context, rec catalog.Record, u *Upload) error {
	if rec.State != catalog.Ready {
		return nil
	}
	expires := time.Now().Add(h.cfg.PresignTTL).Truncate(time.Second)
	exp := expires.Unix()
	presigned, err := h.presigned(ctx, rec)
	if err != nil {
		return err
	}
	if presigned != nil {
		u.FileLink = presigned.String()
	} else {
		u.FileLink = h.gatewayLink(rec.ID, variantFile, exp)
	}
	if rec.Thumb {
		u.ThumbLink = h.gatewayLink(rec.ID, variantThumb, exp)
	}
	u.LinksExpire = &expires
	return nil
}

// link: GET /api/v1/media/{id}/link/{variant}?exp=&sig=, no Authorization.
func (h *Handler) link(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	id, variant := r.PathValue("id"), r.PathValue("variant")
	exp, err := strconv.ParseInt(r.URL.Query().Get("exp"), 10, 64)
	valid := err == nil && catalog.ValidID(id) && (variant == variantFile || variant == variantThumb) &&
		hmac.Equal([]byte(r.URL.Query().Get("sig")), []byte(h.sign(id, variant, exp)))
	if !valid || time.Now().Unix() > exp {
		// Expired and forged look alike: ask info for a new link.
		h.fail(w, r, pb.ErrorCode_ERROR_CODE_LINK_EXPIRED, "the link is invalid or expired; ask …/info for a new one")
		return
	}
	rec, err := h.cat.Get(r.Context(), id)
	switch {
	case errors.Is(err, catalog.ErrNotFound) || (err == nil && rec.State == catalog.Rejected):
		h.fail(w, r, pb.ErrorCode_ERROR_CODE_NOT_FOUND, "no such upload")
	case err != nil:
		h.fail(w, r, pb.ErrorCode_ERROR_CODE_UNAVAILABLE, err.Error())
	case variant == variantThumb:
		h.serveThumb(w, r, rec)
	default:
		h.serveFile(w, r, rec)
	}
}
