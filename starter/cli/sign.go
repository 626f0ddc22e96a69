package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/google/uuid"

	"github.com/shipline/shipline/internal/signing"
	"github.com/shipline/shipline/workflows"
)

// auth signs a mutating request with the user's ed25519 key: --key FILE, else
// SHIPLINE_KEY, else ~/.ssh/id_ed25519 when it exists. Without any key the
// request goes unsigned (refused where platform.yaml sets require_signatures).
// args is the request's input; its Auth is not part of what is signed.
func (g *globals) auth(workflowID, action, actor string, args any) (*signing.Auth, error) {
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
		return nil, invalid("cannot sign the request with %s: %v; pass an unencrypted ed25519 key with --key FILE (or SHIPLINE_KEY)", path, err)
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
	if _, err := os.Stat(signing.DefaultKeyFile()); err != nil {
		return fmt.Sprintf(" (no key found: create one with `ssh-keygen -t ed25519 -N '' -f %s` and ask a platform admin to register the .pub line)", signing.DefaultKeyFile())
	}
	return ""
}
