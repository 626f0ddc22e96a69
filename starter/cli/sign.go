package cli

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/google/uuid"

	"github.com/shipline/shipline/internal/signing"
	"github.com/shipline/shipline/workflows"
)

// PrivateKeyEnv is the environment variable that may hold the signing key
// itself (the text of an unencrypted OpenSSH ed25519 private key), for CI jobs
// that get it from their secret store.
const PrivateKeyEnv = "SHIPLINE_PRIVATE_KEY"

// signingKey finds the user's ed25519 key: --key FILE (or SHIPLINE_KEY), else
// the key text in SHIPLINE_PRIVATE_KEY, else ~/.ssh/id_ed25519 when it exists.
// Both a key file and SHIPLINE_PRIVATE_KEY is bad usage: which one signs would
// be a guess. Without any key it returns nil.
func (g *globals) signingKey() (ed25519.PrivateKey, error) {
	text := os.Getenv(PrivateKeyEnv)
	switch {
	case text != "" && g.keyFile != "":
		return nil, invalid("both %s and --key %s (or SHIPLINE_KEY) give a signing key; unset one of them", PrivateKeyEnv, g.keyFile)
	case text != "":
		key, err := signing.ParsePrivateKey([]byte(text), PrivateKeyEnv)
		if err != nil {
			return nil, invalid("cannot sign the request with the key in %v; it must hold an unencrypted ed25519 private key in OpenSSH format (the whole file `ssh-keygen -t ed25519 -N ''` writes, with its BEGIN and END lines)", err)
		}
		return key, nil
	}
	path, explicit := g.keyFile, g.keyFile != ""
	if !explicit {
		path = signing.DefaultKeyFile()
	}
	if path == "" {
		return nil, nil
	}
	key, err := signing.LoadPrivateKey(path)
	if err != nil {
		if !explicit && errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, invalid("cannot sign the request with %s: %v; pass an unencrypted ed25519 key with --key FILE (or SHIPLINE_KEY, or its text in %s)", path, err, PrivateKeyEnv)
	}
	return key, nil
}

// auth signs a mutating request with the user's ed25519 key (see signingKey).
// Without any key the request goes unsigned (refused where platform.yaml sets
// require_signatures). args is the request's input; its Auth is not part of
// what is signed.
func (g *globals) auth(workflowID, action, actor string, args any) (*signing.Auth, error) {
	key, err := g.signingKey()
	if key == nil || err != nil {
		return nil, err
	}
	canonical, err := signing.Canonical(workflows.SignedArgs(args))
	if err != nil {
		return nil, err
	}
	a := signing.Sign(key, signing.Request{WorkflowID: workflowID, Action: action, Actor: actor, Args: canonical,
		RequestID: uuid.NewString(), Time: time.Now().UTC()})
	return &a, nil
}

// keyHint is printed with a signature refusal.
func keyHint() string {
	if os.Getenv(PrivateKeyEnv) != "" {
		return ""
	}
	if _, err := os.Stat(signing.DefaultKeyFile()); err != nil {
		return fmt.Sprintf(" (no key found: create one with `ssh-keygen -t ed25519 -N '' -f %s` and ask a platform admin to register the .pub line)", signing.DefaultKeyFile())
	}
	return ""
}
