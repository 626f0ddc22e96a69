// Package msgauth authenticates the messages Shipline's workflows send each
// other (signals and updates between entities). Anyone who can reach the
// Temporal namespace can send a workflow any signal or update, so a message
// that claims to come from Shipline carries a Seal: an HMAC-SHA256, keyed with
// a secret only the workers hold, over the message's target workflow ID, its
// name, a random nonce, the time it was sealed and its payload in canonical
// JSON. The secret never enters workflow history: sealing and verifying run in
// activities; only the seal and the verdict are recorded.
package msgauth

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Field is the JSON key of the seal inside a message's payload.
const Field = "seal"

// MaxAge is how long a seal is accepted after it was made; receivers also
// refuse a nonce they have seen, so a copied message cannot be sent again.
const MaxAge = 24 * time.Hour

// MaxSkew is how far in the future a seal's time may be (clocks of workers differ).
const MaxSkew = 5 * time.Minute

// MinSecretLen is the shortest secret accepted, in bytes.
const MinSecretLen = 32

// Seal authenticates one message.
type Seal struct {
	Nonce string    `json:"nonce"`
	At    time.Time `json:"at"`
	MAC   string    `json:"mac"`
}

// Payload is the canonical form of a message's payload: its JSON object with
// keys sorted, numbers kept as written and the seal field left out. v may be
// a struct, a map or raw JSON ([]byte or json.RawMessage).
func Payload(v any) ([]byte, error) {
	var data []byte
	switch b := v.(type) {
	case json.RawMessage:
		data = b
	case []byte:
		data = b
	default:
		var err error
		if data, err = json.Marshal(v); err != nil {
			return nil, err
		}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		return nil, fmt.Errorf("a sealed message's payload must be a JSON object: %w", err)
	}
	delete(obj, Field)
	return json.Marshal(obj) // map keys are sorted
}

// mac computes the MAC of one message.
func mac(secret []byte, target, name, nonce string, at time.Time, payload []byte) string {
	h := hmac.New(sha256.New, secret)
	head, _ := json.Marshal([]string{"shipline-internal-v1", target, name, nonce, at.UTC().Format(time.RFC3339Nano)})
	h.Write(head)
	h.Write([]byte{'\n'})
	h.Write(payload)
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// Make seals a message for target (a workflow ID) and name (a signal or update
// name) at the given time; payload is the canonical payload (see Payload).
func Make(secret []byte, target, name string, payload []byte, at time.Time) (Seal, error) {
	if len(secret) < MinSecretLen {
		return Seal{}, errors.New("the internal message secret is missing or too short")
	}
	var n [16]byte
	if _, err := rand.Read(n[:]); err != nil {
		return Seal{}, err
	}
	s := Seal{Nonce: hex.EncodeToString(n[:]), At: at.UTC().Truncate(time.Millisecond)}
	s.MAC = mac(secret, target, name, s.Nonce, s.At, payload)
	return s, nil
}

// Check verifies a seal at time now. The error says why a message is not
// authentic, in words fit for the audit.
func Check(secret []byte, target, name string, payload []byte, s *Seal, now time.Time) error {
	switch {
	case len(secret) < MinSecretLen:
		return errors.New("the worker has no internal message secret")
	case s == nil:
		return errors.New("the message carries no seal: it was not sent by a Shipline workflow")
	case s.Nonce == "" || s.MAC == "" || s.At.IsZero():
		return errors.New("the message's seal is incomplete")
	}
	want := mac(secret, target, name, s.Nonce, s.At, payload)
	if !hmac.Equal([]byte(want), []byte(s.MAC)) {
		return fmt.Errorf("the message's seal does not match (not made by Shipline for %s %q with this content)", target, name)
	}
	switch age := now.Sub(s.At); {
	case age > MaxAge:
		return fmt.Errorf("the message's seal is stale (made %s, more than %s ago)", s.At.Format(time.RFC3339), MaxAge)
	case age < -MaxSkew:
		return fmt.Errorf("the message's seal is from the future (%s)", s.At.Format(time.RFC3339))
	}
	return nil
}
