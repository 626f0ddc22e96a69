package workerapp

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/shipline/shipline/internal/platform"
	"github.com/shipline/shipline/internal/signing"
)

// The dashboard is checked before anything starts: auth dev only on
// loopback; outside --dev a registered key_file; with --dev a generated key,
// registered as the delegate of the dev platform.
func TestPrepareDashboard(t *testing.T) {
	dir := t.TempDir()
	cfg := func(w *platform.Web) *platform.Config {
		return &platform.Config{StateDir: filepath.Join(dir, "state"), Web: w}
	}
	if d, err := prepareDashboard(Options{Config: cfg(nil)}); d != nil || err != nil {
		t.Fatalf("no --web-addr: %v %v", d, err)
	}
	if _, err := prepareDashboard(Options{Config: cfg(nil), Dev: true, WebAddr: "0.0.0.0:8080"}); err == nil || !strings.Contains(err.Error(), "loopback only") {
		t.Errorf("dev picker on 0.0.0.0: %v", err)
	}
	proxy := &platform.Web{Auth: platform.WebAuthProxy, TrustedProxies: []string{"10.0.0.1/32"}, Delegate: "web"}
	if _, err := prepareDashboard(Options{Config: cfg(proxy), WebAddr: "0.0.0.0:8080"}); err == nil || !strings.Contains(err.Error(), "web.key_file") {
		t.Errorf("no key outside --dev: %v", err)
	}
	// --dev: a key under state_dir, registered in the config, the same on restart.
	c := cfg(nil)
	d, err := prepareDashboard(Options{Config: c, Dev: true, WebAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := signing.PublicKeyLine(d.key, "")
	if keys := c.Delegates["web"].Keys; len(keys) != 1 || !strings.HasPrefix(keys[0], pub) || d.delegate != "web" {
		t.Fatalf("dev delegate %+v, key %s", c.Delegates, pub)
	}
	if fi, err := os.Stat(filepath.Join(dir, "state", "web", "key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("dev key file: %v %v", fi, err)
	}
	again, err := prepareDashboard(Options{Config: cfg(nil), Dev: true, WebAddr: "127.0.0.1:0"})
	if err != nil || !again.key.Equal(d.key) {
		t.Errorf("restart made another key: %v", err)
	}
	// A key_file whose public key is not registered: refused, saying what to add.
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, _ := ssh.MarshalPrivateKey(priv, "web")
	keyFile := filepath.Join(dir, "web_key")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	withKey := *proxy
	withKey.KeyFile = keyFile
	c = cfg(&withKey)
	c.Delegates = map[string]platform.Delegate{"web": {Keys: []string{pub}}} // another key
	if _, err := prepareDashboard(Options{Config: c, WebAddr: "0.0.0.0:8080"}); err == nil || !strings.Contains(err.Error(), "is not registered under delegates.web.keys") {
		t.Errorf("unregistered key_file: %v", err)
	}
	line, _ := signing.PublicKeyLine(priv, "ops")
	c.Delegates["web"] = platform.Delegate{Keys: []string{line}}
	if d, err := prepareDashboard(Options{Config: c, WebAddr: "0.0.0.0:8080"}); err != nil || !d.key.Equal(priv) {
		t.Errorf("registered key_file: %v", err)
	}
}
