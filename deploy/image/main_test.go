package main

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/parley-chat/parley/deploy/internal/deploytest"
)

// TestImageRunsParleyDev builds the image from a static parley, reads the
// tarball back, checks that it holds only the binary, the CA bundle and
// the user files and runs as 65532, unpacks it and starts `parley dev`
// from the unpacked root (chrooted into it as uid 65532 when the test runs
// as root, so nothing from the host is used), probing /healthz.
func TestImageRunsParleyDev(t *testing.T) {
	bin := deploytest.Parley(t, "PARLEY_STATIC_BIN", "CGO_ENABLED=0")
	out := filepath.Join(t.TempDir(), "parley.tar")
	if err := write(bin, "/etc/ssl/certs/ca-certificates.crt", out, "parley:test"); err != nil {
		t.Fatal(err)
	}
	img, err := tarball.ImageFromPath(out, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Config.User != "65532:65532" || len(cfg.Config.Entrypoint) != 1 || cfg.Config.Entrypoint[0] != "/parley" {
		t.Fatalf("config: user %q entrypoint %q, want 65532:65532 and /parley", cfg.Config.User, cfg.Config.Entrypoint)
	}

	root := t.TempDir()
	files := unpack(t, mutate.Extract(img), root)
	want := []string{"etc", "etc/group", "etc/passwd", "etc/ssl", "etc/ssl/certs", "etc/ssl/certs/ca-certificates.crt", "home", "home/nonroot", "parley"}
	if strings.Join(files, " ") != strings.Join(want, " ") {
		t.Fatalf("image files:\n%v\nwant\n%v", files, want)
	}

	// Inside the chroot the data dir is the user's home, the only place it may write.
	dataDir, exe := filepath.Join(root, "home/nonroot/data"), filepath.Join(root, "parley")
	attr := &syscall.SysProcAttr{Setpgid: true}
	if os.Getuid() == 0 {
		dataDir, exe = "/home/nonroot/data", "/parley"
		attr.Chroot = root
		attr.Credential = &syscall.Credential{Uid: 65532, Gid: 65532}
	} else {
		t.Log("not root: running the unpacked binary without chroot or uid change")
	}
	args, ops := deploytest.DevFlags(t, dataDir)
	cmd := exec.Command(exe, args...)
	cmd.Dir = "/"
	cmd.SysProcAttr = attr
	exited, _ := deploytest.Start(t, cmd)
	deploytest.WaitOK(t, "http://"+ops+"/healthz", 60*time.Second, exited)
	deploytest.WaitOK(t, "http://"+ops+"/readyz", 60*time.Second, exited)
}

// unpack writes a flattened image file system under root, with the
// owners the image gives (when running as root), and returns its entries.
func unpack(t *testing.T, rc io.ReadCloser, root string) []string {
	t.Helper()
	defer rc.Close()
	tr := tar.NewReader(rc)
	var names []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		path := filepath.Join(root, h.Name)
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(path, os.FileMode(h.Mode))
		case tar.TypeReg:
			var f *os.File
			if f, err = os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode)); err == nil {
				_, err = io.Copy(f, tr)
				f.Close()
			}
		default:
			t.Fatalf("%s: unexpected entry type %c", h.Name, h.Typeflag)
		}
		if err == nil && os.Getuid() == 0 {
			err = os.Lchown(path, h.Uid, h.Gid)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	sort.Strings(names)
	return names
}
