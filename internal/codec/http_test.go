package codec

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
)

const uiOrigin = "http://127.0.0.1:8233"

// uiBody is a /decode request in the Temporal UI's shape: metadata values and
// data in base64.
func uiBody(t *testing.T, ps []*commonpb.Payload) string {
	t.Helper()
	type payload struct {
		Metadata map[string]string `json:"metadata"`
		Data     string            `json:"data"`
	}
	var body struct {
		Payloads []payload `json:"payloads"`
	}
	for _, p := range ps {
		m := map[string]string{}
		for k, v := range p.Metadata {
			m[k] = base64.StdEncoding.EncodeToString(v)
		}
		body.Payloads = append(body.Payloads, payload{Metadata: m, Data: base64.StdEncoding.EncodeToString(p.Data)})
	}
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

type call struct {
	method, path, remote, origin, auth string
}

func serve(h http.Handler, c call, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(c.method, c.path, strings.NewReader(body))
	r.RemoteAddr = c.remote
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("X-Namespace", "default")
	if c.origin != "" {
		r.Header.Set("Origin", c.origin)
	}
	if c.auth != "" {
		r.Header.Set("Authorization", c.auth)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func encrypted(t *testing.T, c *Codec) []*commonpb.Payload {
	t.Helper()
	p, err := c.DataConverter().ToPayload(secret)
	if err != nil {
		t.Fatal(err)
	}
	return []*commonpb.Payload{p}
}

// decoded reads a /decode answer and returns the job definition it holds.
func decoded(t *testing.T, w *httptest.ResponseRecorder) jobDef {
	t.Helper()
	return decodedBody(t, w.Code, w.Body.Bytes())
}

func decodedBody(t *testing.T, code int, body []byte) jobDef {
	t.Helper()
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	var out struct {
		Payloads []*commonpb.Payload `json:"payloads"`
	}
	if err := json.Unmarshal(body, &out); err != nil || len(out.Payloads) != 1 {
		t.Fatalf("answer %s: %v", body, err)
	}
	var j jobDef
	if err := converter.GetDefaultDataConverter().FromPayload(out.Payloads[0], &j); err != nil {
		t.Fatal(err)
	}
	return j
}

func TestHandlerWithToken(t *testing.T) {
	c := mustParse(t, "k1:"+newKey(t))
	h := c.Handler(Access{Token: "s3cret-token", Origins: []string{uiOrigin}})
	body := uiBody(t, encrypted(t, c))

	for _, tc := range []struct {
		name string
		call call
		want int
	}{
		{"no token", call{"POST", "/decode", "127.0.0.1:5000", uiOrigin, ""}, http.StatusUnauthorized},
		{"wrong token", call{"POST", "/decode", "127.0.0.1:5000", uiOrigin, "Bearer nope"}, http.StatusUnauthorized},
		{"not bearer", call{"POST", "/decode", "127.0.0.1:5000", "", "Basic czNjcmV0LXRva2Vu"}, http.StatusUnauthorized},
		{"foreign origin with the token", call{"POST", "/decode", "127.0.0.1:5000", "http://evil.example", "Bearer s3cret-token"}, http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := serve(h, tc.call, body)
			if w.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.want, w.Body.String())
			}
			if strings.Contains(w.Body.String(), secret.Name) || strings.Contains(w.Body.String(), base64.StdEncoding.EncodeToString([]byte(`{"name"`))) {
				t.Fatal("a refused request got plaintext")
			}
		})
	}
	// The token works from anywhere, with or without the UI's origin.
	if got := decoded(t, serve(h, call{"POST", "/decode", "10.1.2.3:5000", uiOrigin, "Bearer s3cret-token"}, body)); got != secret {
		t.Errorf("decoded %+v", got)
	}
	w := serve(h, call{"POST", "/decode", "10.1.2.3:5000", "", "bearer s3cret-token"}, body)
	if got := decoded(t, w); got != secret {
		t.Errorf("decoded %+v", got)
	}
}

func TestHandlerLoopbackOnlyWithoutToken(t *testing.T) {
	c := mustParse(t, "k1:"+newKey(t))
	h := c.Handler(Access{Origins: []string{uiOrigin}})
	body := uiBody(t, encrypted(t, c))
	w := serve(h, call{"POST", "/decode", "192.0.2.10:4000", uiOrigin, ""}, body)
	if w.Code != http.StatusUnauthorized || strings.Contains(w.Body.String(), secret.Name) {
		t.Fatalf("remote request without token: %d %s", w.Code, w.Body.String())
	}
	for _, remote := range []string{"127.0.0.1:4000", "[::1]:4000"} {
		if got := decoded(t, serve(h, call{"POST", "/decode", remote, uiOrigin, ""}, body)); got != secret {
			t.Errorf("from %s: decoded %+v", remote, got)
		}
	}
	// A page of another origin cannot use the endpoint through the user's browser.
	if w := serve(h, call{"POST", "/decode", "127.0.0.1:4000", "http://localhost:9999", ""}, body); w.Code != http.StatusForbidden {
		t.Errorf("foreign origin: %d", w.Code)
	}
}

func TestHandlerCORS(t *testing.T) {
	c := mustParse(t, "k1:"+newKey(t))
	h := c.Handler(Access{Token: "t", Origins: []string{uiOrigin + "/"}})
	w := serve(h, call{"OPTIONS", "/decode", "10.0.0.1:1", uiOrigin, ""}, "")
	if w.Code != http.StatusNoContent {
		t.Fatalf("preflight: %d %s", w.Code, w.Body.String())
	}
	hd := w.Header()
	if hd.Get("Access-Control-Allow-Origin") != uiOrigin || !strings.Contains(hd.Get("Access-Control-Allow-Headers"), "X-Namespace") ||
		!strings.Contains(hd.Get("Access-Control-Allow-Headers"), "Authorization") || hd.Get("Access-Control-Allow-Credentials") != "true" {
		t.Errorf("preflight headers: %v", hd)
	}
	w = serve(h, call{"OPTIONS", "/decode", "10.0.0.1:1", "http://other.example", ""}, "")
	if w.Code != http.StatusForbidden || w.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight of a foreign origin: %d %v", w.Code, w.Header())
	}
}

func TestHandlerEncodeAndErrors(t *testing.T) {
	c := mustParse(t, "k1:"+newKey(t))
	h := c.Handler(Access{Token: "t"})
	plain, _ := converter.GetDefaultDataConverter().ToPayload(secret)
	w := serve(h, call{"POST", "/encode", "10.0.0.1:1", "", "Bearer t"}, uiBody(t, []*commonpb.Payload{plain}))
	if w.Code != http.StatusOK || strings.Contains(w.Body.String(), base64.StdEncoding.EncodeToString(plain.Data)) {
		t.Fatalf("/encode: %d %s", w.Code, w.Body.String())
	}
	var enc commonpb.Payloads
	if err := json.Unmarshal(w.Body.Bytes(), &enc); err != nil || len(enc.Payloads) != 1 || string(enc.Payloads[0].Metadata[MetadataKeyID]) != "k1" {
		t.Fatalf("/encode answer %s: %v", w.Body.String(), err)
	}

	// A payload of an unknown key: a 400 naming the key and the variable.
	other := mustParse(t, "k9:"+newKey(t))
	w = serve(h, call{"POST", "/decode", "10.0.0.1:1", "", "Bearer t"}, uiBody(t, encrypted(t, other)))
	if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), `"k9"`) || !strings.Contains(w.Body.String(), "SHIPLINE_CODEC_KEYS") {
		t.Errorf("unknown key: %d %s", w.Code, w.Body.String())
	}
	if w := serve(h, call{"GET", "/decode", "10.0.0.1:1", "", "Bearer t"}, ""); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", w.Code)
	}
}

func TestServerServesUntilCancelled(t *testing.T) {
	c := mustParse(t, "k1:"+newKey(t))
	srv, err := Listen("127.0.0.1:0", c.Handler(Access{}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	resp, err := http.Post(srv.URL()+"/decode", "application/json", strings.NewReader(uiBody(t, encrypted(t, c))))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if got := decodedBody(t, resp.StatusCode, b); got != secret {
		t.Errorf("POST %s/decode: %+v", srv.URL(), got)
	}
	if _, err := Listen(strings.TrimPrefix(srv.URL(), "http://"), c.Handler(Access{})); err == nil || !strings.Contains(err.Error(), "--codec-addr") {
		t.Errorf("second Listen on a taken address: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
}
