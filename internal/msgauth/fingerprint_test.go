package msgauth

import (
	"strings"
	"testing"
)

func TestFingerprintNamesSecretWithoutRevealingIt(t *testing.T) {
	a := []byte(strings.Repeat("a", 32))
	b := []byte(strings.Repeat("b", 32))
	fa, fb := Fingerprint(a), Fingerprint(b)
	if len(fa) != 8 || strings.Trim(fa, "0123456789abcdef") != "" {
		t.Fatalf("Fingerprint = %q, want 8 hex characters", fa)
	}
	if fa != Fingerprint([]byte(strings.Repeat("a", 32))) {
		t.Error("the same secret gives different fingerprints")
	}
	if fa == fb {
		t.Errorf("different secrets give the same fingerprint %s", fa)
	}
	if strings.Contains(IdentityMark(a), "aaaa") {
		t.Errorf("identity mark %q shows the secret", IdentityMark(a))
	}
}

func TestFingerprintIn(t *testing.T) {
	secret := []byte(strings.Repeat("s", 32))
	for identity, want := range map[string]string{
		"12@host@ " + IdentityMark(secret):                           Fingerprint(secret),
		"12@host@ " + IdentityMark(secret) + " (payloads encrypted)": Fingerprint(secret),
		"12@host@":                            "",
		"12@host@ (payloads encrypted)":       "",
		"12@host@ (internal secret xyz)":      "",
		"12@host@ (internal secret 0123abcd)": "0123abcd",
	} {
		if got := FingerprintIn(identity); got != want {
			t.Errorf("FingerprintIn(%q) = %q, want %q", identity, got, want)
		}
	}
}
