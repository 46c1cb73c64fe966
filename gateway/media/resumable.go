package media

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"

	"github.com/parley-chat/parley/internal/media/catalog"
	blob "github.com/parley-chat/parley/pkg/media"
)

// The resumable protocol (schemas/README.md, "Uploads"), a subset of tus
// 1.0's core with its header names:
//
//	POST   /api/v1/uploads?name=…   Upload-Length: N      → 201, Location, Upload-Offset: 0
//	HEAD   /api/v1/uploads/{id}                          → Upload-Offset, Upload-Length
//	PATCH  /api/v1/uploads/{id}     Upload-Offset: k, body → 204 Upload-Offset: k+n,
//	                                                        or 200 with the upload when complete
//	DELETE /api/v1/uploads/{id}                          → 204
//
// Every PATCH stores what it received as a part, even when the connection
// is cut halfway: the client asks HEAD for the offset and goes on from
// there. The last PATCH joins the parts into the file, streaming.

const (
	hdrLength = "Upload-Length"
	hdrOffset = "Upload-Offset"
)

// create: POST /api/v1/uploads.
func (h *Handler) create(w http.ResponseWriter, r *http.Request, user string) {
	n, err := strconv.ParseInt(r.Header.Get(hdrLength), 10, 64)
	if err != nil || n < 0 {
		h.fail(w, r, pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, hdrLength+": the file's size in bytes is required")
		return
	}
	if n > h.cfg.MaxFileBytes {
		h.fail(w, r, pb.ErrorCode_ERROR_CODE_FILE_TOO_LARGE, fmt.Sprintf("files are limited to %d bytes", h.cfg.MaxFileBytes))
		return
	}
	rec, ok := h.begin(w, r, user, n, false)
	if !ok {
		return
	}
	w.Header().Set("Location", "/api/v1/uploads/"+rec.ID)
	w.Header().Set(hdrOffset, "0")
	writeJSON(w, http.StatusCreated, uploadJSON(rec))
}

// pending loads the caller's own unfinished upload.
func (h *Handler) pending(w http.ResponseWriter, r *http.Request, user string) (catalog.Record, bool) {
	return h.own(w, r, "no such unfinished upload of yours", func(rec catalog.Record) bool {
		return rec.Owner == user && rec.State == catalog.Uploading && !rec.OneShot
	})
}

// own loads the upload named in the path where mine says it is the
// caller's to handle, and answers 404 (saying what) where not.
func (h *Handler) own(w http.ResponseWriter, r *http.Request, what string, mine func(catalog.Record) bool) (catalog.Record, bool) {
	id := r.PathValue("id")
	var rec catalog.Record
	err := catalog.ErrNotFound
	if catalog.ValidID(id) {
		rec, err = h.cat.Get(r.Context(), id)
	}
	switch {
	case errors.Is(err, catalog.ErrNotFound) || (err == nil && !mine(rec)):
		h.fail(w, r, pb.ErrorCode_ERROR_CODE_NOT_FOUND, what)
	case err != nil:
		h.fail(w, r, pb.ErrorCode_ERROR_CODE_UNAVAILABLE, err.Error())
	default:
		return rec, true
	}
	return rec, false
}

// offset: HEAD /api/v1/uploads/{id}.
func (h *Handler) offset(w http.ResponseWriter, r *http.Request, user string) {
	rec, ok := h.pending(w, r, user)
	if !ok {
		return
	}
	w.Header().Set(hdrOffset, strconv.FormatInt(rec.Offset, 10))
	w.Header().Set(hdrLength, strconv.FormatInt(rec.Size, 10))
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// cutTolerant ends a body at a read error instead of failing: bytes that
// arrived before a cut are kept, and the client resumes after them.
type cutTolerant struct{ r io.Reader }

func (c cutTolerant) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err != nil && err != io.EOF {
		err = io.EOF
	}
	return n, err
}

// patch: PATCH /api/v1/uploads/{id}.
func (h *Handler) patch(w http.ResponseWriter, r *http.Request, user string) {
	rec, ok := h.pending(w, r, user)
	if !ok {
		return
	}
	off, err := strconv.ParseInt(r.Header.Get(hdrOffset), 10, 64)
	if err != nil || off != rec.Offset {
		w.Header().Set(hdrOffset, strconv.FormatInt(rec.Offset, 10))
		h.fail(w, r, pb.ErrorCode_ERROR_CODE_OFFSET_MISMATCH, fmt.Sprintf("%s must be the upload's offset, %d", hdrOffset, rec.Offset))
		return
	}
	// A cut connection cancels the request's context; what arrived is
	// stored and recorded regardless.
	ctx := context.WithoutCancel(r.Context())
	key := catalog.NewPartKey(rec.ID, off)
	info, err := h.blobs.Put(ctx, key, cutTolerant{r.Body}, rec.Size-off, "application/octet-stream")
	if err != nil {
		_ = h.blobs.Delete(ctx, key)
		if errors.Is(err, blob.ErrTooLarge) {
			h.fail(w, r, pb.ErrorCode_ERROR_CODE_FILE_TOO_LARGE, fmt.Sprintf("the body passes the declared %s %d", hdrLength, rec.Size))
		} else {
			h.fail(w, r, pb.ErrorCode_ERROR_CODE_UNAVAILABLE, "storing the part: "+err.Error())
		}
		return
	}
	if info.Size > 0 {
		rec, err = h.cat.Update(ctx, rec.ID, func(x *catalog.Record) error {
			if x.Offset != off || x.State != catalog.Uploading {
				return errMoved
			}
			x.Parts = append(x.Parts, catalog.Part{Key: key, Size: info.Size})
			x.Offset += info.Size
			return nil
		})
		if err != nil {
			_ = h.blobs.Delete(ctx, key)
			if errors.Is(err, errMoved) {
				h.fail(w, r, pb.ErrorCode_ERROR_CODE_OFFSET_MISMATCH, "another request moved the upload on")
			} else {
				h.fail(w, r, pb.ErrorCode_ERROR_CODE_UNAVAILABLE, err.Error())
			}
			return
		}
	} else {
		_ = h.blobs.Delete(ctx, key)
	}
	if rec.Offset < rec.Size {
		w.Header().Set(hdrOffset, strconv.FormatInt(rec.Offset, 10))
		w.WriteHeader(http.StatusNoContent)
		return
	}
	h.finish(w, r, rec)
}

var errMoved = errors.New("upload moved on")

// finish joins the parts into the file, streaming, through the same
// checks as a one-shot upload.
func (h *Handler) finish(w http.ResponseWriter, r *http.Request, rec catalog.Record) {
	parts := &partsReader{ctx: context.WithoutCancel(r.Context()), h: h, parts: rec.Parts}
	if final, ok := h.complete(w, r, rec, parts); ok {
		writeJSON(w, http.StatusOK, uploadJSON(final))
	}
}

// partsReader reads the parts one after another, opening each when the
// previous one ends.
type partsReader struct {
	ctx   context.Context
	h     *Handler
	parts []catalog.Part
	cur   io.ReadCloser
}

func (p *partsReader) Read(b []byte) (int, error) {
	for {
		if p.cur == nil {
			if len(p.parts) == 0 {
				return 0, io.EOF
			}
			rc, _, err := p.h.blobs.Get(p.ctx, p.parts[0].Key)
			if err != nil {
				return 0, err
			}
			p.cur, p.parts = rc, p.parts[1:]
		}
		n, err := p.cur.Read(b)
		if err == io.EOF {
			p.cur.Close()
			p.cur = nil
			if n == 0 {
				continue
			}
			err = nil
		}
		return n, err
	}
}

// cancel: DELETE /api/v1/uploads/{id}, the owner drops an upload that was
// never sent (finished or not).
func (h *Handler) cancel(w http.ResponseWriter, r *http.Request, user string) {
	rec, ok := h.own(w, r, "no such unsent upload of yours", func(rec catalog.Record) bool {
		return rec.Owner == user && !rec.Sent
	})
	if !ok {
		return
	}
	if err := h.refs.Discard(r.Context(), rec); err != nil {
		h.fail(w, r, pb.ErrorCode_ERROR_CODE_UNAVAILABLE, err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
