// Package signing signs and verifies Shipline requests with ed25519 keys.
//
// A mutating request (release, deploy, promote, approve, reject, delete, resume,
// cancel) carries an Auth: a request ID, a time and an ed25519 signature over
// the workflow ID, the action, the actor, the request's arguments (canonical
// JSON), the time and the request ID. Verification is pure and deterministic,
// so workflows run it directly (approvals inside Update validators). The public
// keys are registered in platform.yaml as OpenSSH authorized_keys lines.
package signing

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// MaxAge is how old (or how far ahead of workflow time) a signed request may be.
const MaxAge = 5 * time.Minute

// Auth is the proof attached to a request.
type Auth struct {
	RequestID string    `json:"request_id"`
	Time      time.Time `json:"time"`
	Signature string    `json:"signature"` // base64 ed25519 signature
	Key       string    `json:"key,omitempty"`
	// Delegate names the registered delegate (platform.yaml `delegates:`,
	// e.g. the dashboard, "web") whose key signed the request on the actor's
	// behalf: "carol via web". Empty: the actor's own key signed it.
	Delegate string `json:"delegate,omitempty"`
}

// Request is what a signature covers.
type Request struct {
	WorkflowID string
	Action     string
	Actor      string
	// Args is the request's arguments without their Auth, as canonical JSON.
	Args      []byte
	RequestID string
	Time      time.Time
	// Delegate is the delegate signing on the actor's behalf ("" for none).
	Delegate string
}

// Payload is the exact byte string that is signed. A delegated request signs
// another header naming its delegate, so that no signature of one kind can
// pass for the other.
func (r Request) Payload() []byte {
	var b bytes.Buffer
	if r.Delegate != "" {
		b.WriteString("shipline-delegated-request-v1\n" + r.Delegate + "\n")
	} else {
		b.WriteString("shipline-request-v1\n")
	}
	for _, f := range []string{r.WorkflowID, r.Action, r.Actor, r.RequestID, strconv.FormatInt(r.Time.UTC().Unix(), 10)} {
		b.WriteString(f)
		b.WriteByte('\n')
	}
	b.Write(r.Args)
	return b.Bytes()
}

// Canonical renders arguments as canonical JSON (encoding/json sorts map keys
// and keeps struct field order, so the same value always gives the same bytes).
func Canonical(v any) ([]byte, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, data); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Sign signs r with key and returns the Auth to attach.
func Sign(key ed25519.PrivateKey, r Request) Auth {
	sig := ed25519.Sign(key, r.Payload())
	pub, _ := ssh.NewPublicKey(key.Public())
	return Auth{RequestID: r.RequestID, Time: r.Time.UTC().Truncate(time.Second), Signature: base64.StdEncoding.EncodeToString(sig),
		Key: ssh.FingerprintSHA256(pub), Delegate: r.Delegate}
}

// Policy is what platform.yaml says about signatures.
type Policy struct {
	Require bool `json:"require"`
	// Keys maps each user to their authorized_keys lines.
	Keys map[string][]string `json:"keys,omitempty"`
	// Delegates maps each registered delegate (platform.yaml `delegates:`,
	// e.g. web, the dashboard) to its authorized_keys lines. A delegate signs
	// requests on behalf of the actor they name; the actor's access rules apply.
	Delegates map[string][]string `json:"delegates,omitempty"`
}

// Refusal types (stable: the audit and the CLI match on them).
var (
	ErrUnsigned = errors.New("unsigned")
	ErrForged   = errors.New("forged")
	ErrStale    = errors.New("stale")
	ErrReplayed = errors.New("replayed")
)

// Check verifies a request under the policy at workflow time now. seen reports
// whether a request ID was already used in this workflow. With Require false, an
// unsigned request passes (and so does a signed one whose actor has no keys),
// but a signature that is present must be valid. A request naming a delegate
// (Auth.Delegate) must be signed by a key registered for that delegate, with
// or without Require.
func (p Policy) Check(r Request, a *Auth, now time.Time, seen func(string) bool) error {
	if a == nil || a.Signature == "" {
		if p.Require {
			return fmt.Errorf("%w: this platform requires signed requests; sign with `--key FILE` (or SHIPLINE_KEY, SHIPLINE_PRIVATE_KEY, or ~/.ssh/id_ed25519) whose public key is registered under users.%s.keys in platform.yaml — requests started from the Temporal UI cannot be signed", ErrUnsigned, r.Actor)
		}
		return nil
	}
	if a.Delegate != "" {
		// A delegate's claim is checked whatever Require says: it names who
		// acts, so it must verify, with a key of that registered delegate.
		keys := p.Delegates[a.Delegate]
		if len(keys) == 0 {
			return fmt.Errorf("%w: %q is not a registered delegate (delegates: in platform.yaml); a request on behalf of %s must be signed by %s's own key or by a registered delegate's", ErrForged, a.Delegate, r.Actor, r.Actor)
		}
		r.RequestID, r.Time, r.Delegate = a.RequestID, a.Time, a.Delegate
		sig, err := base64.StdEncoding.DecodeString(a.Signature)
		if err != nil || !verifyAny(keys, r.Payload(), sig) {
			return fmt.Errorf("%w: the signature does not match any key of the delegate %s for this request on behalf of %s", ErrForged, a.Delegate, r.Actor)
		}
	} else {
		keys := p.Keys[r.Actor]
		if len(keys) == 0 {
			if p.Require {
				return fmt.Errorf("%w: %s has no registered key: a platform admin adds it under users.%s.keys in platform.yaml", ErrForged, r.Actor, r.Actor)
			}
			return nil
		}
		r.RequestID, r.Time, r.Delegate = a.RequestID, a.Time, ""
		sig, err := base64.StdEncoding.DecodeString(a.Signature)
		if err != nil || !verifyAny(keys, r.Payload(), sig) {
			return fmt.Errorf("%w: the signature does not match any key of %s for this request", ErrForged, r.Actor)
		}
	}
	if age := now.Sub(a.Time); age > MaxAge || age < -MaxAge {
		return fmt.Errorf("%w: the request was signed at %s, more than %s from now (%s); sign it again", ErrStale, a.Time.UTC().Format(time.RFC3339), MaxAge, now.UTC().Format(time.RFC3339))
	}
	if seen != nil && seen(a.RequestID) {
		return fmt.Errorf("%w: request %s was already used; every request needs a new ID", ErrReplayed, a.RequestID)
	}
	return nil
}

func verifyAny(keys []string, payload, sig []byte) bool {
	for _, k := range keys {
		pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(k))
		if err != nil {
			continue
		}
		cp, ok := pub.(ssh.CryptoPublicKey)
		if !ok {
			continue
		}
		if ed, ok := cp.CryptoPublicKey().(ed25519.PublicKey); ok && ed25519.Verify(ed, payload, sig) {
			return true
		}
	}
	return false
}

// ParsePublicKey checks an authorized_keys line holds an ed25519 key.
func ParsePublicKey(line string) error {
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		return fmt.Errorf("not an OpenSSH public key line: %v", err)
	}
	if pub.Type() != ssh.KeyAlgoED25519 {
		return fmt.Errorf("key type %s: only ssh-ed25519 keys are accepted", pub.Type())
	}
	return nil
}

// LoadPrivateKey reads an OpenSSH (or PKCS#8) ed25519 private key file.
// Encrypted keys are not supported: use an unencrypted key for Shipline.
func LoadPrivateKey(path string) (ed25519.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParsePrivateKey(data, path)
}

// ParsePrivateKey parses an unencrypted OpenSSH (or PKCS#8) ed25519 private
// key, e.g. the text of a CI secret; source names where it came from in
// errors, which never quote the key. Windows line ends, surrounding blank
// space and a key whose line breaks were stored as the two characters `\n`
// (as some secret stores do) are accepted.
func ParsePrivateKey(data []byte, source string) (ed25519.PrivateKey, error) {
	text := strings.TrimSpace(strings.ReplaceAll(string(data), "\r\n", "\n"))
	if !strings.Contains(text, "\n") && strings.Contains(text, `\n`) {
		text = strings.ReplaceAll(text, `\n`, "\n")
	}
	raw, err := ssh.ParseRawPrivateKey([]byte(text + "\n"))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	switch k := raw.(type) {
	case ed25519.PrivateKey:
		return k, nil
	case *ed25519.PrivateKey:
		return *k, nil
	}
	return nil, fmt.Errorf("%s is not an ed25519 key", source)
}

// DefaultKeyFile is ~/.ssh/id_ed25519.
func DefaultKeyFile() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".ssh", "id_ed25519")
}

// Via names who acted for the record: "carol", or "carol via web" for a
// request a delegate signed on carol's behalf.
func Via(actor string, a *Auth) string {
	if a != nil && a.Delegate != "" {
		return actor + " via " + a.Delegate
	}
	return actor
}

// PublicKeyLine is the authorized_keys line of an ed25519 key, with a comment.
func PublicKeyLine(key ed25519.PrivateKey, comment string) (string, error) {
	pub, err := ssh.NewPublicKey(key.Public())
	if err != nil {
		return "", err
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub)))
	if comment != "" {
		line += " " + comment
	}
	return line, nil
}
