package codec

import (
	"crypto/cipher"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// errNoKeys is returned by Parse for a value without entries.
var errNoKeys = errors.New("no keys")

// KeySize is the size of an AES-256 key in bytes.
const KeySize = 32

// keyIDRE is the shape of a key ID.
var keyIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// keysFormat is shown with every key error.
const keysFormat = "write ID:BASE64KEY pairs separated by commas, the key that encrypts first, " +
	"e.g. 2026-11:$(openssl rand -base64 32) (IDs: letters, digits, '.', '_', '-'; keys: 32 bytes in base64)"

// Parse reads the keys of a codec from value, the content of the environment
// variable from: ID:BASE64KEY pairs separated by commas or white space; the
// first encrypts, all decrypt. Errors name the variable and the entry, never
// the key.
func Parse(from, value string) (*Codec, error) {
	c := &Codec{from: from, keys: map[string]cipher.AEAD{}}
	entries := strings.FieldsFunc(value, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r' })
	if len(entries) == 0 {
		return nil, fmt.Errorf("%s holds no keys: %s: %w", from, keysFormat, errNoKeys)
	}
	for n, e := range entries {
		id, b64, ok := strings.Cut(e, ":")
		if !ok {
			return nil, fmt.Errorf("%s, entry %d: no ':' between the key ID and the key: %s", from, n+1, keysFormat)
		}
		if !keyIDRE.MatchString(id) {
			return nil, fmt.Errorf("%s, entry %d: %q is not a key ID: %s", from, n+1, id, keysFormat)
		}
		if _, dup := c.keys[id]; dup {
			return nil, fmt.Errorf("%s, entry %d: key ID %q is given twice; give each key its own ID", from, n+1, id)
		}
		key, err := decodeKey(b64)
		if err != nil {
			return nil, fmt.Errorf("%s, key %q: %v: %s", from, id, err, keysFormat)
		}
		aead, err := newAEAD(key)
		if err != nil {
			return nil, fmt.Errorf("%s, key %q: %v: %s", from, id, err, keysFormat)
		}
		c.keys[id] = aead
		c.ids = append(c.ids, id)
	}
	c.current = c.ids[0]
	return c, nil
}

// FromEnv reads the keys from the environment variable name (read with
// getenv). An unset or empty variable gives a codec that encrypts nothing
// and, on decode, says that name must be set.
func FromEnv(name string, getenv func(string) string) (*Codec, error) {
	v := getenv(name)
	if strings.TrimSpace(v) == "" {
		return None(name), nil
	}
	return Parse(name, v)
}

// Require is FromEnv for a configuration that turned encryption on: the
// variable must be set. what says who named it, e.g.
// "platform.yaml temporal.encryption.keys_env".
func Require(name, what string, getenv func(string) string) (*Codec, error) {
	v := getenv(name)
	if strings.TrimSpace(v) == "" {
		return nil, fmt.Errorf("%s names %s, which is not set: %s", what, name, keysFormat)
	}
	c, err := Parse(name, v)
	if errors.Is(err, errNoKeys) {
		return nil, fmt.Errorf("%s names %s, which holds no keys: %s", what, name, keysFormat)
	}
	return c, err
}

// None is a codec without keys: it encrypts nothing and, on decode of an
// encrypted payload, says the variable from must be set ("" when none is
// configured).
func None(from string) *Codec {
	return &Codec{from: from, keys: map[string]cipher.AEAD{}}
}

// decodeKey accepts standard or URL-safe base64, padded or not.
func decodeKey(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("the key is not base64")
}
