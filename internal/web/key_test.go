package web

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shipline/shipline/internal/platform"
	"github.com/shipline/shipline/internal/signing"
)

// The dashboard's key signs for every user: a key file others can read (or
// write) is refused at start, saying how to fix it, as ssh refuses a private
// key that is too open.
func TestDashboardKeyFileMustBePrivate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "web_key")
	key, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("new key: %v %v", fi.Mode(), err)
	}
	line, _ := signing.PublicKeyLine(key, "shipline-web")
	cfg := func() *platform.Config {
		return &platform.Config{StateDir: dir, Web: &platform.Web{Auth: platform.WebAuthProxy, KeyFile: path, Delegate: "web"},
			Delegates: map[string]platform.Delegate{"web": {Keys: []string{line}}}}
	}
	if _, _, err := DashboardKey(cfg(), false); err != nil {
		t.Fatalf("0600 key: %v", err)
	}
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o622} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, _, err := DashboardKey(cfg(), false)
		if err == nil || !strings.Contains(err.Error(), "chmod 600 "+path) {
			t.Errorf("key file mode %o: %v", mode, err)
		}
	}
	// The dev key kept under state_dir too.
	dev := DevKeyFile(dir)
	if _, err := LoadOrCreateKey(dev); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dev, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := DashboardKey(&platform.Config{StateDir: dir}, true); err == nil || !strings.Contains(err.Error(), "chmod 600 "+dev) {
		t.Errorf("dev key 0644: %v", err)
	}
}

// A web.key_file whose public key platform.yaml does not register is refused
// at start with --dev as without it, saying what to add: only the dev key a
// --dev worker generates itself is registered for it.
func TestDashboardKeyFileMustBeRegisteredAlsoWithDev(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "web_key")
	key, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	other, err := LoadOrCreateKey(filepath.Join(dir, "other_key"))
	if err != nil {
		t.Fatal(err)
	}
	line, _ := signing.PublicKeyLine(key, "shipline-web")
	otherLine, _ := signing.PublicKeyLine(other, "other")
	for _, dev := range []bool{false, true} {
		cfg := &platform.Config{StateDir: dir, Web: &platform.Web{Auth: platform.WebAuthProxy, KeyFile: path, Delegate: "web"},
			Delegates: map[string]platform.Delegate{"web": {Keys: []string{otherLine}}}}
		_, _, err := DashboardKey(cfg, dev)
		if err == nil || !strings.Contains(err.Error(), "is not registered under delegates.web.keys") || !strings.Contains(err.Error(), strings.TrimSuffix(line, " shipline-web")) {
			t.Errorf("dev %v: unregistered key_file: %v", dev, err)
		}
		if len(cfg.Delegates["web"].Keys) != 1 {
			t.Errorf("dev %v: the key_file was registered in memory: %v", dev, cfg.Delegates["web"].Keys)
		}
	}
	// --dev without key_file: its own key under state_dir, registered in memory.
	cfg := &platform.Config{StateDir: dir}
	if _, delegate, err := DashboardKey(cfg, true); err != nil || delegate != "web" || len(cfg.Delegates["web"].Keys) != 1 {
		t.Errorf("dev key: %v %q %v", err, delegate, cfg.Delegates)
	}
}
