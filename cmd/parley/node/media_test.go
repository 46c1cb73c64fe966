package node_test

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/parley-chat/parley/cmd/parley/node"
	"github.com/parley-chat/parley/pkg/media/mediaclient"
	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
)

// fetch GETs a media url of n as user, following a redirect (S3); it
// returns the status and body.
func fetch(t *testing.T, n *node.Node, user, url string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", "http://"+n.HTTPAddr()+url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+devToken(t, n, user))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

// A picture goes from upload to a room: only its uploader may fetch it
// until it is sent; then the room's members get its exact bytes and
// others do not; nobody else can send it; deleting the message makes it
// unreachable. Every role runs with its own NATS permissions (parley dev).
func TestMediaThroughARoom(t *testing.T) {
	n := startNode(t, testConfig(t, t.TempDir()))
	room := createRoom(t, n, "alice", "bob")
	other := createRoom(t, n, "eve")
	alice, eve := dial(t, n, "alice", ""), dial(t, n, "eve", "")

	img := image.NewRGBA(image.Rect(0, 0, 64, 48))
	for x := range 64 {
		img.Set(x, x%48, color.RGBA{200, 40, 90, 255})
	}
	var file bytes.Buffer
	if err := png.Encode(&file, img); err != nil {
		t.Fatal(err)
	}
	mc := &mediaclient.Client{Base: "http://" + n.HTTPAddr(), Token: devToken(t, n, "alice")}
	up, err := mc.Upload(ctxT(t, 30*time.Second), "dot.png", bytes.NewReader(file.Bytes()), int64(file.Len()), mediaclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if up.Kind != "image" || up.Width != 64 || up.Height != 48 {
		t.Errorf("upload %+v: want an image of 64×48", up)
	}
	if code, _ := fetch(t, n, "bob", up.URL); code != http.StatusNotFound {
		t.Fatalf("bob fetched alice's unsent upload: HTTP %d", code)
	}

	att := &pb.Attachment{Kind: pb.Attachment_KIND_IMAGE, Url: up.URL, MimeType: up.ContentType, Size: uint64(up.Size)}
	if _, err := send(t, eve, other, &pb.SendMessage{ClientMsgId: "steal", Body: &pb.Body{Attachments: []*pb.Attachment{att}}}); errorCode(err) != pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT {
		t.Fatalf("eve sending alice's upload: %v, want INVALID_ARGUMENT", err)
	}
	ack, err := send(t, alice, room, &pb.SendMessage{ClientMsgId: "pic", Body: &pb.Body{Text: "look", Attachments: []*pb.Attachment{att}}})
	if err != nil {
		t.Fatal(err)
	}
	if code, body := fetch(t, n, "bob", up.URL); code != http.StatusOK || !bytes.Equal(body, file.Bytes()) {
		t.Fatalf("bob fetching the picture sent to him: HTTP %d, %d bytes (want %d)", code, len(body), file.Len())
	}
	if code, _ := fetch(t, n, "eve", up.URL); code != http.StatusNotFound {
		t.Fatalf("eve, no member, fetched the picture: HTTP %d", code)
	}

	if _, err := send(t, alice, room, &pb.SendMessage{ClientMsgId: "unsend", Kind: pb.MessageKind_MESSAGE_KIND_DELETE, RefSeq: ack.Seq}); err != nil {
		t.Fatal(err)
	}
	if code, _ := fetch(t, n, "bob", up.URL); code != http.StatusNotFound {
		t.Fatalf("the picture of a deleted message: HTTP %d, want 404", code)
	}
}
