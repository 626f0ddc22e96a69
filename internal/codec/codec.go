// Package codec encrypts what Shipline writes into Temporal: every payload
// (workflow and activity inputs and results, signals, updates, queries, memos)
// is sealed with AES-256-GCM before it leaves the process, so the operator of
// the Temporal cluster cannot read job definitions, release messages or
// anything else Shipline sends; failure messages and stack traces are moved
// into an encrypted payload too. Search attributes stay readable (Temporal
// indexes them), and so do workflow IDs, types and activity names.
//
// Keys come from an environment variable (platform.yaml names it, never the
// key) holding ID:BASE64KEY pairs; the first encrypts, all decrypt, so a key
// is rotated by putting a new one first and keeping the old ones after it.
// Each encrypted payload names its key ID in its metadata. Payloads that are
// not encrypted pass through on decode, so histories written before
// encryption was turned on still read.
package codec

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"fmt"
	"strings"

	commonpb "go.temporal.io/api/common/v1"
	failurepb "go.temporal.io/api/failure/v1"
	"go.temporal.io/api/proxy"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Metadata of an encrypted payload.
const (
	// Encoding is the encoding named by an encrypted payload.
	Encoding = "binary/encrypted"
	// MetadataKeyID names the key that encrypted a payload.
	MetadataKeyID = "encryption-key-id"
	// MetadataCipher names the cipher.
	MetadataCipher = "encryption-cipher"
	// Cipher is the only cipher written and read.
	Cipher = "AES256-GCM"
)

// DefaultKeysEnv is the environment variable the CLI reads keys from unless
// told another one.
const DefaultKeysEnv = "SHIPLINE_CODEC_KEYS"

// Codec is a converter.PayloadCodec encrypting with its current key and
// decrypting with any of its keys. A Codec without keys encrypts nothing and
// explains, on decode, that an encrypted payload needs keys.
type Codec struct {
	from    string // where the keys come from, for errors: "SHIPLINE_CODEC_KEYS"
	current string // ID of the key that encrypts; "" encrypts nothing
	ids     []string
	keys    map[string]cipher.AEAD
}

var _ converter.PayloadCodec = (*Codec)(nil)

// Enabled tells whether the codec encrypts.
func (c *Codec) Enabled() bool { return c.current != "" }

// Current is the ID of the key that encrypts ("" when none).
func (c *Codec) Current() string { return c.current }

// Source names where the keys come from (the environment variable).
func (c *Codec) Source() string { return c.from }

// DataConverter is the SDK's default data converter with this codec applied
// to every payload: what the worker's client uses.
func (c *Codec) DataConverter() converter.DataConverter {
	return converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), c)
}

// FailureConverter moves failure messages and stack traces into an encoded
// payload, so the codec encrypts them too; nil (the SDK's default) when the
// codec does not encrypt.
func (c *Codec) FailureConverter() converter.FailureConverter {
	if !c.Enabled() {
		return nil
	}
	return temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{
		DataConverter:          c.DataConverter(),
		EncodeCommonAttributes: true,
	})
}

// DialOption applies the codec at the gRPC layer: payloads in every request
// are encoded and payloads in every response decoded (search attributes
// excepted), and failure messages encrypted by FailureConverter are restored.
// The CLI uses it rather than DataConverter because it also reads raw
// histories, memos and listings, which a data converter never sees.
func (c *Codec) DialOption() (grpc.DialOption, error) {
	// Inbound only: a client sends no failures of its own.
	failures, err := proxy.NewFailureVisitorInterceptor(proxy.FailureVisitorInterceptorOptions{
		Inbound: &proxy.VisitFailuresOptions{
			Visitor: func(_ *proxy.VisitFailuresContext, f *failurepb.Failure) error {
				converter.DecodeCommonFailureAttributes(converter.GetDefaultDataConverter(), f)
				return nil
			},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("failure codec interceptor: %w", err)
	}
	payloads, err := converter.NewPayloadCodecGRPCClientInterceptor(converter.PayloadCodecGRPCClientInterceptorOptions{
		Codecs: []converter.PayloadCodec{grpcCodec{c}},
	})
	if err != nil {
		return nil, fmt.Errorf("payload codec interceptor: %w", err)
	}
	// A response passes the inner interceptor first: payloads (failure
	// attributes among them) are decrypted, then failure messages restored.
	return grpc.WithChainUnaryInterceptor(failures, payloads), nil
}

// grpcCodec reports the codec's errors as FailedPrecondition: a payload that
// cannot be decoded now will not decode on a retry, and the SDK retries
// errors without a gRPC status until the call's deadline.
type grpcCodec struct{ c *Codec }

func (g grpcCodec) Encode(ps []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out, err := g.c.Encode(ps)
	return out, asStatus(err)
}

func (g grpcCodec) Decode(ps []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out, err := g.c.Decode(ps)
	return out, asStatus(err)
}

func asStatus(err error) error {
	if err == nil {
		return nil
	}
	return status.Error(codes.FailedPrecondition, err.Error())
}

// Encode encrypts each payload with the current key: the whole payload
// (metadata and data) is marshalled and sealed with a fresh random nonce;
// the key ID is the additional authenticated data. Without a current key it
// returns the payloads unchanged.
func (c *Codec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	if c.current == "" {
		return payloads, nil
	}
	aead := c.keys[c.current]
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		plain, err := proto.Marshal(p)
		if err != nil {
			return payloads, fmt.Errorf("encrypt payload: %w", err)
		}
		nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
		if _, err := rand.Read(nonce); err != nil {
			return payloads, fmt.Errorf("encrypt payload: random nonce: %w", err)
		}
		out[i] = &commonpb.Payload{
			Metadata: map[string][]byte{
				converter.MetadataEncoding: []byte(Encoding),
				MetadataKeyID:              []byte(c.current),
				MetadataCipher:             []byte(Cipher),
			},
			Data: aead.Seal(nonce, nonce, plain, []byte(c.current)),
		}
	}
	return out, nil
}

// Decode decrypts each encrypted payload with the key it names; payloads that
// are not encrypted pass through unchanged.
func (c *Codec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if string(p.GetMetadata()[converter.MetadataEncoding]) != Encoding {
			out[i] = p
			continue
		}
		d, err := c.decrypt(p)
		if err != nil {
			return payloads, err
		}
		out[i] = d
	}
	return out, nil
}

func (c *Codec) decrypt(p *commonpb.Payload) (*commonpb.Payload, error) {
	id := string(p.GetMetadata()[MetadataKeyID])
	if ci := string(p.GetMetadata()[MetadataCipher]); ci != "" && ci != Cipher {
		return nil, fmt.Errorf("payload encrypted with key %q uses cipher %q; this Shipline reads %s only", id, ci, Cipher)
	}
	aead, ok := c.keys[id]
	switch {
	case !ok && len(c.keys) == 0:
		return nil, fmt.Errorf("payload is encrypted with key %q but %s", id, c.missing())
	case !ok:
		return nil, fmt.Errorf("payload is encrypted with key %q, which %s does not hold (it holds %s): add that key to %s, after the current one",
			id, c.from, strings.Join(c.ids, ", "), c.from)
	}
	data := p.GetData()
	if len(data) < aead.NonceSize()+aead.Overhead() {
		return nil, fmt.Errorf("payload encrypted with key %q is truncated (%d bytes)", id, len(data))
	}
	nonce, sealed := data[:aead.NonceSize()], data[aead.NonceSize():]
	plain, err := aead.Open(nil, nonce, sealed, []byte(id))
	if err != nil {
		return nil, fmt.Errorf("decrypt payload with key %q from %s: the key is not the one that encrypted it, or the payload was altered; check %s holds the same key as the worker's",
			id, c.from, c.from)
	}
	var out commonpb.Payload
	if err := proto.Unmarshal(plain, &out); err != nil {
		return nil, fmt.Errorf("decrypt payload with key %q: not a payload: %w", id, err)
	}
	return &out, nil
}

// missing says why there are no keys and what to do.
func (c *Codec) missing() string {
	if c.from == "" { // a worker without temporal.encryption
		return "no encryption keys are configured: name them in platform.yaml (temporal: {encryption: {keys_env: SHIPLINE_CODEC_KEYS}}) and give the worker the keys that encrypted it"
	}
	return c.from + " is not set: set it to the keys the worker encrypts with (ID:BASE64KEY,…)"
}

// newAEAD makes the AES-256-GCM cipher of a 32-byte key.
func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("the key is %d bytes, want %d (AES-256)", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}
