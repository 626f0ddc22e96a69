package msgauth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"regexp"
)

// fingerprintLabel keys the fingerprint apart from any message MAC.
const fingerprintLabel = "shipline internal secret fingerprint"

// Fingerprint names secret without revealing it: the first 8 hex characters
// of HMAC-SHA256(secret, "shipline internal secret fingerprint"). Workers that
// hold the same secret show the same fingerprint.
func Fingerprint(secret []byte) string {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(fingerprintLabel))
	return hex.EncodeToString(h.Sum(nil))[:8]
}

// IdentityMark is what a worker adds to its Temporal identity so that other
// workers on its task queue can tell, from the pollers Temporal lists,
// whether they hold the same secret.
func IdentityMark(secret []byte) string { return "(internal secret " + Fingerprint(secret) + ")" }

var markRE = regexp.MustCompile(`\(internal secret ([0-9a-f]{8})\)`)

// FingerprintIn returns the fingerprint a worker identity advertises, or ""
// when it advertises none (a worker from before fingerprints, or not a
// Shipline worker).
func FingerprintIn(identity string) string {
	if m := markRE.FindStringSubmatch(identity); m != nil {
		return m[1]
	}
	return ""
}
