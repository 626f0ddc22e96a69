package codec

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/proto"

	"github.com/shipline/shipline/internal/apperr"
)

// newKey returns a random base64 AES-256 key.
func newKey(t *testing.T) string {
	t.Helper()
	b := make([]byte, KeySize)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

func mustParse(t *testing.T, value string) *Codec {
	t.Helper()
	c, err := Parse("SHIPLINE_CODEC_KEYS", value)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type jobDef struct {
	Name     string `json:"name"`
	Notebook string `json:"notebook"`
}

var secret = jobDef{Name: "customer360-daily-orders", Notebook: "/Repos/prod/secret_notebook"}

func TestRoundTripThroughDataConverter(t *testing.T) {
	c := mustParse(t, "k1:"+newKey(t))
	dc := c.DataConverter()
	p, err := dc.ToPayload(secret)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(p.Metadata[converter.MetadataEncoding]); got != Encoding {
		t.Errorf("encoding = %q, want %q", got, Encoding)
	}
	if got := string(p.Metadata[MetadataKeyID]); got != "k1" {
		t.Errorf("key id = %q, want k1", got)
	}
	raw, _ := p.Marshal()
	for _, plain := range []string{secret.Name, secret.Notebook, "json/plain"} {
		if bytes.Contains(raw, []byte(plain)) {
			t.Errorf("encrypted payload contains %q", plain)
		}
	}
	var back jobDef
	if err := dc.FromPayload(p, &back); err != nil {
		t.Fatal(err)
	}
	if back != secret {
		t.Errorf("decoded %+v, want %+v", back, secret)
	}

	// A fresh nonce each time: the same value never encrypts to the same bytes.
	q, _ := dc.ToPayload(secret)
	if bytes.Equal(p.Data, q.Data) || bytes.Equal(p.Data[:12], q.Data[:12]) {
		t.Error("two encryptions of one value share their nonce or ciphertext")
	}
}

func TestPlainPayloadsPassThrough(t *testing.T) {
	c := mustParse(t, "k1:"+newKey(t))
	plain, err := converter.GetDefaultDataConverter().ToPayload(secret)
	if err != nil {
		t.Fatal(err)
	}
	var back jobDef
	if err := c.DataConverter().FromPayload(plain, &back); err != nil || back != secret {
		t.Fatalf("a payload written before encryption: %+v, %v", back, err)
	}
}

func TestKeylessCodecEncryptsNothing(t *testing.T) {
	c := None("SHIPLINE_CODEC_KEYS")
	p, err := c.DataConverter().ToPayload(secret)
	if err != nil {
		t.Fatal(err)
	}
	if string(p.Metadata[converter.MetadataEncoding]) != "json/plain" || c.Enabled() {
		t.Errorf("a codec without keys encrypted: %q", p.Metadata[converter.MetadataEncoding])
	}
}

func TestDecodeErrorsNameKeyAndVariable(t *testing.T) {
	k1 := newKey(t)
	enc, err := mustParse(t, "k1:"+k1).Encode([]*commonpb.Payload{{Data: []byte(`"x"`)}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		codec *Codec
		want  []string
	}{
		{"unknown key ID", mustParse(t, "k2:"+newKey(t)), []string{`key "k1"`, "SHIPLINE_CODEC_KEYS does not hold", "holds k2"}},
		{"no keys", None("SHIPLINE_CODEC_KEYS"), []string{`key "k1"`, "SHIPLINE_CODEC_KEYS is not set"}},
		{"no keys configured", None(""), []string{`key "k1"`, "no encryption keys are configured", "temporal: {encryption: {keys_env:"}},
		{"same ID, other key", mustParse(t, "k1:"+newKey(t)), []string{`key "k1"`, "SHIPLINE_CODEC_KEYS", "not the one that encrypted it"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.codec.Decode(enc)
			if err == nil {
				t.Fatal("decoded with the wrong keys")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), k1) {
				t.Error("the error shows the key")
			}
		})
	}
}

func TestTamperedPayloadIsRefused(t *testing.T) {
	c := mustParse(t, "k1:"+newKey(t))
	enc, _ := c.Encode([]*commonpb.Payload{{Data: []byte(`"x"`)}})
	enc[0].Data[len(enc[0].Data)-1] ^= 1
	if _, err := c.Decode(enc); err == nil || !strings.Contains(err.Error(), "altered") {
		t.Fatalf("tampered payload: %v", err)
	}
	// The key ID is authenticated: relabelling a payload with another key of the codec fails.
	c2 := mustParse(t, "k1:"+newKey(t)+",k2:"+newKey(t))
	enc, _ = c2.Encode([]*commonpb.Payload{{Data: []byte(`"x"`)}})
	enc[0].Metadata[MetadataKeyID] = []byte("k2")
	if _, err := c2.Decode(enc); err == nil {
		t.Fatal("a payload relabelled with another key ID decoded")
	}
}

func TestRotation(t *testing.T) {
	oldKey, newK := newKey(t), newKey(t)
	before := mustParse(t, "2026-01:"+oldKey)
	p, err := before.DataConverter().ToPayload(secret)
	if err != nil {
		t.Fatal(err)
	}
	after := mustParse(t, "2026-11:"+newK+", 2026-01:"+oldKey)
	if after.Current() != "2026-11" {
		t.Fatalf("current key = %q, want the first, 2026-11", after.Current())
	}
	var back jobDef
	if err := after.DataConverter().FromPayload(p, &back); err != nil || back != secret {
		t.Fatalf("payload of the old key after rotation: %+v, %v", back, err)
	}
	q, _ := after.DataConverter().ToPayload(secret)
	if got := string(q.Metadata[MetadataKeyID]); got != "2026-11" {
		t.Errorf("after rotation new payloads use key %q, want 2026-11", got)
	}
	// Dropping the old key too early is a clear error.
	if _, err := mustParse(t, "2026-11:"+newK).Decode([]*commonpb.Payload{p}); err == nil || !strings.Contains(err.Error(), `"2026-01"`) {
		t.Errorf("old payload without the old key: %v", err)
	}
}

func TestParseErrors(t *testing.T) {
	good := newKey(t)
	short := base64.StdEncoding.EncodeToString(make([]byte, 16))
	for _, tc := range []struct{ value, want string }{
		{"", "holds no keys"},
		{" , ", "holds no keys"},
		{good, "entry 1: no ':'"},
		{"k1:" + good + ",b@d:" + good, `entry 2: "b@d" is not a key ID`},
		{"k1:" + good + ",k1:" + good, `key ID "k1" is given twice`},
		{"k1:%%%%", `key "k1": the key is not base64`},
		{"k1:" + short, `key "k1": the key is 16 bytes, want 32`},
	} {
		_, err := Parse("SHIPLINE_CODEC_KEYS", tc.value)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "SHIPLINE_CODEC_KEYS") {
			t.Errorf("Parse(%q) = %v, want an error naming SHIPLINE_CODEC_KEYS and saying %q", tc.value, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), good) {
			t.Errorf("Parse(%q): the error shows the key", tc.value)
		}
	}
	// Keys in URL-safe or unpadded base64, separated by new lines, are accepted.
	raw := make([]byte, KeySize)
	raw[0] = 0xfb
	c, err := Parse("K", "a:"+base64.RawURLEncoding.EncodeToString(raw)+"\nb:"+good)
	if err != nil || c.Current() != "a" {
		t.Fatalf("Parse: %v", err)
	}
}

func TestRequireAndFromEnv(t *testing.T) {
	env := map[string]string{"SET": "k1:" + newKey(t), "BLANK": "  "}
	getenv := func(k string) string { return env[k] }
	const what = "platform.yaml temporal.encryption.keys_env"
	if _, err := Require("UNSET", what, getenv); err == nil || !strings.Contains(err.Error(), what+" names UNSET, which is not set") {
		t.Errorf("Require(UNSET) = %v", err)
	}
	if _, err := Require("BLANK", what, getenv); err == nil || !strings.Contains(err.Error(), "BLANK, which is not set") {
		t.Errorf("Require(BLANK) = %v", err)
	}
	if c, err := Require("SET", what, getenv); err != nil || !c.Enabled() {
		t.Errorf("Require(SET) = %v", err)
	}
	if c, err := FromEnv("UNSET", getenv); err != nil || c.Enabled() || c.Source() != "UNSET" {
		t.Errorf("FromEnv(UNSET) = %+v, %v", c, err)
	}
	if c, err := FromEnv("SET", getenv); err != nil || c.Current() != "k1" {
		t.Errorf("FromEnv(SET) = %v", err)
	}
}

func TestFailureMessagesAreEncrypted(t *testing.T) {
	if None("K").FailureConverter() != nil {
		t.Error("a codec without keys changes failures")
	}
	c := mustParse(t, "k1:"+newKey(t))
	fc := c.FailureConverter()
	f := fc.ErrorToFailure(temporal.NewNonRetryableApplicationError("ref secret-branch is not a branch", apperr.UnknownRef, nil))
	raw, _ := proto.Marshal(f)
	if bytes.Contains(raw, []byte("secret-branch")) {
		t.Fatalf("the failure holds its message in plaintext: %v", f)
	}
	if f.GetApplicationFailureInfo().GetType() != apperr.UnknownRef || string(f.GetEncodedAttributes().GetMetadata()[MetadataKeyID]) != "k1" {
		t.Errorf("failure type or encryption lost: %v", f)
	}
	if err := fc.FailureToError(f); err == nil || !strings.Contains(err.Error(), "ref secret-branch is not a branch") {
		t.Errorf("decoded failure: %v", err)
	}
}
