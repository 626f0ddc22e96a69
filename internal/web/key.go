package web

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"golang.org/x/crypto/ssh"

	"github.com/shipline/shipline/internal/platform"
	"github.com/shipline/shipline/internal/signing"
)

// DevKeyFile is where a --dev worker keeps the dashboard's key when
// platform.yaml names none: <state_dir>/web/key.
func DevKeyFile(stateDir string) string { return filepath.Join(stateDir, "web", "key") }

// LoadOrCreateKey reads the ed25519 private key at path, or creates one there
// (mode 0600, OpenSSH format) when there is none.
func LoadOrCreateKey(path string) (ed25519.PrivateKey, error) {
	key, err := loadPrivateKey(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	_, key, err = ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	block, err := ssh.MarshalPrivateKey(key, "shipline-web")
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, err
	}
	return key, nil
}

// errKeyTooOpen marks a key file that others may read or write.
var errKeyTooOpen = errors.New("too open")

// loadPrivateKey reads the dashboard's key, refusing a file that anyone but
// its owner may read or write: with it one signs as any user "via web".
func loadPrivateKey(path string) (ed25519.PrivateKey, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%w: the dashboard's key %s has mode %04o, so others may read or change it and sign as any user; `chmod 600 %s`", errKeyTooOpen, path, perm, path)
	}
	return signing.LoadPrivateKey(path)
}

// DashboardKey finds the key the dashboard signs with and makes sure platform
// config registers it as the dashboard's delegate: web.key_file, which must be
// registered under delegates (a platform admin's decision); or, with dev and
// no key_file, a key kept under state_dir that is registered in cfg (in
// memory: the dev platform trusts its own dashboard). A key_file that is
// not registered is refused with --dev too, so that a platform.yaml tried
// with --dev does not fail only in production.
func DashboardKey(cfg *platform.Config, dev bool) (ed25519.PrivateKey, string, error) {
	w := platform.Web{Auth: platform.WebAuthDev, Delegate: platform.DefaultDelegate}
	if cfg.Web != nil {
		w = *cfg.Web
	}
	var key ed25519.PrivateKey
	var err error
	switch {
	case w.KeyFile != "":
		if key, err = loadPrivateKey(w.KeyFile); errors.Is(err, errKeyTooOpen) {
			return nil, "", fmt.Errorf("web.key_file: %w", err)
		} else if err != nil {
			return nil, "", fmt.Errorf("web.key_file: %w; create it with `ssh-keygen -t ed25519 -N '' -f %s` and register its .pub line under delegates.%s.keys in platform.yaml", err, w.KeyFile, w.Delegate)
		}
	case dev:
		if key, err = LoadOrCreateKey(DevKeyFile(cfg.StateDir)); err != nil {
			return nil, "", fmt.Errorf("the dashboard's dev key: %w", err)
		}
	default:
		return nil, "", fmt.Errorf("the dashboard signs what users do with its own key: set web.key_file in platform.yaml and register its public key under delegates.%s.keys (or run with --dev, which generates one)", w.Delegate)
	}
	line, err := signing.PublicKeyLine(key, "shipline-web")
	if err != nil {
		return nil, "", err
	}
	registered := cfg.Delegates[w.Delegate].Keys
	if slices.ContainsFunc(registered, func(k string) bool { return samePublicKey(k, line) }) {
		return key, w.Delegate, nil
	}
	if w.KeyFile != "" { // a platform admin's key: registered by them, also with --dev
		return nil, "", fmt.Errorf("the public key of web.key_file %s is not registered under delegates.%s.keys in platform.yaml: add %q", w.KeyFile, w.Delegate, line)
	}
	if cfg.Delegates == nil {
		cfg.Delegates = map[string]platform.Delegate{}
	}
	d := cfg.Delegates[w.Delegate]
	d.Keys = append(slices.Clone(d.Keys), line)
	cfg.Delegates[w.Delegate] = d
	return key, w.Delegate, nil
}

// samePublicKey compares two authorized_keys lines by their keys (not comments).
func samePublicKey(a, b string) bool {
	ka, _, _, _, errA := ssh.ParseAuthorizedKey([]byte(a))
	kb, _, _, _, errB := ssh.ParseAuthorizedKey([]byte(b))
	return errA == nil && errB == nil && string(ka.Marshal()) == string(kb.Marshal())
}
