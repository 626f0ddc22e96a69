package cli

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/shipline/shipline/internal/signing"
	"github.com/shipline/shipline/workflows"
)

// newKeyPair returns an OpenSSH private key file's text and its public line.
func newKeyPair(t *testing.T) (private, public string) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "ci@example")
	if err != nil {
		t.Fatal(err)
	}
	sp, _ := ssh.NewPublicKey(pub)
	return string(pem.EncodeToMemory(block)), strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp)))
}

// A CI job gives its signing key from its secret store: as the key text in
// SHIPLINE_PRIVATE_KEY (also with its line breaks stored as `\n`), or as a
// file written from the secret and named by --key or SHIPLINE_KEY. Each signs
// a request the workflow's check accepts for the key's registered public line.
func TestSigningKeyFromCISecret(t *testing.T) {
	private, public := newKeyPair(t)
	t.Setenv("HOME", t.TempDir()) // no ~/.ssh/id_ed25519 to fall back to
	file := filepath.Join(t.TempDir(), "shipline-key")
	if err := os.WriteFile(file, []byte(private), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, env, keyFile string
	}{
		{"key text in the environment", private, ""},
		{"key text with CRLF line ends", strings.ReplaceAll(private, "\n", "\r\n"), ""},
		{"key text with escaped line breaks", strings.ReplaceAll(strings.TrimSpace(private), "\n", `\n`), ""},
		{"key file written from the secret", "", file},
	}
	policy := signing.Policy{Require: true, Keys: map[string][]string{"ci": {public}}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv(PrivateKeyEnv, c.env)
			g := &globals{keyFile: c.keyFile}
			args := workflows.ReleaseInput{Project: "demo", Version: "v1.0.0", Actor: "ci"}
			a, err := g.auth("release/demo/v1.0.0", workflows.ActionRelease, "ci", args)
			if err != nil || a == nil {
				t.Fatalf("auth = %v, %v; want a signature", a, err)
			}
			canonical, _ := signing.Canonical(workflows.SignedArgs(args))
			r := signing.Request{WorkflowID: "release/demo/v1.0.0", Action: workflows.ActionRelease, Actor: "ci", Args: canonical}
			if err := policy.Check(r, a, time.Now(), nil); err != nil {
				t.Fatalf("the workflow would refuse the signature: %v", err)
			}
		})
	}
}

// A key that cannot be used is bad usage (exit 2) naming where it came from,
// and never quoting the secret; a key given twice is refused, not guessed.
func TestSigningKeyFromCISecretRefusals(t *testing.T) {
	private, _ := newKeyPair(t)
	t.Setenv("HOME", t.TempDir())
	const garbage = "-----BEGIN OPENSSH PRIVATE KEY-----\nc2VjcmV0LXRoYXQtaXMtbm90LWEta2V5\n-----END OPENSSH PRIVATE KEY-----\n"
	cases := []struct {
		name, env, keyFile, want string
	}{
		{"not a key", garbage, "", "cannot sign the request with the key in SHIPLINE_PRIVATE_KEY"},
		{"a public key", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKPAfbaUntUbrkBDsAUfNt5TzriBltnwUDJJJi8mzth1", "", "SHIPLINE_PRIVATE_KEY"},
		{"key text and a key file", private, "/etc/shipline/ci-key", "both SHIPLINE_PRIVATE_KEY and --key /etc/shipline/ci-key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv(PrivateKeyEnv, c.env)
			g := &globals{keyFile: c.keyFile}
			_, err := g.auth("release/demo/v1.0.0", workflows.ActionRelease, "ci", workflows.ReleaseInput{Project: "demo"})
			var ee *exitError
			if !errors.As(err, &ee) || ee.code != ExitInvalid || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v; want exit %d mentioning %q", err, ExitInvalid, c.want)
			}
			if strings.Contains(err.Error(), "c2VjcmV0") || strings.Contains(err.Error(), "PRIVATE KEY-----\n") {
				t.Fatalf("the error quotes the secret: %v", err)
			}
		})
	}
}
