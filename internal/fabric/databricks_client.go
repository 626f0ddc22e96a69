package fabric

// The databricks fabric's client, credentials and error mapping (see databricks.go).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/databricks/databricks-sdk-go"
	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/client"
	"github.com/databricks/databricks-sdk-go/common"
	"github.com/databricks/databricks-sdk-go/config"
	"github.com/databricks/databricks-sdk-go/config/credentials"

	"github.com/shipline/shipline/internal/apperr"
)

// --- client, credentials and errors ---

// envToken authenticates each request with the token in an environment variable.
type envToken struct {
	env  Env
	name string
}

func (envToken) Name() string { return "pat" }

func (t envToken) Configure(context.Context, *config.Config) (credentials.CredentialsProvider, error) {
	return credentials.NewCredentialsProvider(func(r *http.Request) error {
		tok := t.env(t.name)
		if tok == "" {
			return fmt.Errorf("environment variable %s is empty", t.name)
		}
		r.Header.Set("Authorization", "Bearer "+tok)
		return nil
	}), nil
}

type noLoader struct{}

func (noLoader) Name() string                   { return "shipline platform.yaml" }
func (noLoader) Configure(*config.Config) error { return nil }

// clients returns the SDK clients, built once. With token_env nothing is read
// from DATABRICKS_* variables or ~/.databrickscfg: platform.yaml is the only source.
func (d *databricksFabric) clients() (*databricks.WorkspaceClient, *client.DatabricksClient, error) {
	if d.tokenEnv != "" && d.env(d.tokenEnv) == "" {
		return nil, nil, &apperr.Error{Type: apperr.FabricAuth,
			Msg: fmt.Sprintf("databricks fabric %q (%s): environment variable %s is empty; set it to a personal access token on the worker", d.name, d.host, d.tokenEnv)}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ws != nil {
		return d.ws, d.raw, nil
	}
	cfg := &databricks.Config{
		Host:                d.host,
		Profile:             d.profile,
		RetryTimeoutSeconds: int(d.retryTimeout / time.Second),
		HTTPTimeoutSeconds:  int(d.httpTimeout / time.Second),
		RateLimitPerSecond:  d.rateLimit,
	}
	if d.tokenEnv != "" {
		cfg.Credentials = envToken{env: d.env, name: d.tokenEnv}
		cfg.AuthType = "pat"
		cfg.Loaders = []config.Loader{noLoader{}}
	}
	ws, err := databricks.NewWorkspaceClient(cfg)
	if err == nil {
		d.raw, err = client.New(ws.Config)
	}
	if err != nil {
		return nil, nil, &apperr.Error{Type: apperr.FabricAuth,
			Msg: fmt.Sprintf("databricks fabric %q (%s): cannot configure the client: %s; %s", d.name, d.where(), d.redact(err.Error()), d.credentialHint())}
	}
	transport := ws.Config.HTTPTransport
	if transport == nil {
		transport = http.DefaultTransport
	}
	d.once = &http.Client{Transport: transport, Timeout: d.httpTimeout}
	d.ws = ws
	return d.ws, d.raw, nil
}

// sendOnce POSTs a call that a resend could repeat, once: outside
// databricks-sdk-go's retry loop, but with the SDK's credentials and its
// parsing of error answers (so errors are the usual *apierr.APIError, or a
// *url.Error when no answer came). net/http does not resend a POST either.
func (d *databricksFabric) sendOnce(ctx context.Context, path string, body, out any) error {
	w, _, err := d.clients()
	if err != nil {
		return err
	}
	b, err := json.Marshal(body)
	if err != nil {
		return &apperr.Error{Type: apperr.InvalidDefinition, Msg: fmt.Sprintf("encode %s request: %v", path, err)}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(w.Config.Host, "/")+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if err := w.Config.Authenticate(req); err != nil {
		return err
	}
	resp, err := d.once.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		rw, err := common.NewResponseWrapper(resp, common.RequestBody{})
		if err != nil {
			return err
		}
		return apierr.GetAPIError(ctx, rw)
	}
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if out != nil && len(data) > 0 {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		return dec.Decode(out)
	}
	return nil
}

// outcomeUnknown tells whether a call that failed while ctx is still live
// may have acted: an answer of 429 or 5xx, or none at all (a request timeout
// included). Any other 4xx is the server's refusal.
func outcomeUnknown(ctx context.Context, err error) bool {
	if err == nil || ctx.Err() != nil {
		return false
	}
	var fe *apperr.Error
	if errors.As(err, &fe) {
		return !fe.Permanent()
	}
	var ae *apierr.APIError
	if errors.As(err, &ae) {
		return ae.StatusCode == http.StatusTooManyRequests || ae.StatusCode >= 500
	}
	return true
}

// backoffSleep waits before the attempt+1-th try of a call (1 s, 2 s, ... at
// most 10 s, like the SDK) or until ctx ends.
func backoffSleep(ctx context.Context, attempt int) error {
	t := time.NewTimer(time.Duration(min(attempt, 10)) * time.Second)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (d *databricksFabric) where() string {
	if d.host != "" {
		return d.host
	}
	return "profile " + d.profile
}

func (d *databricksFabric) credentialHint() string {
	if d.tokenEnv != "" {
		return fmt.Sprintf("put a valid token with the needed permissions in environment variable %s on the worker, then resume", d.tokenEnv)
	}
	return fmt.Sprintf("fix profile %q in the Databricks config file of the worker, then resume", d.profile)
}

func (d *databricksFabric) redact(s string) string {
	if d.tokenEnv != "" {
		if tok := d.env(d.tokenEnv); len(tok) >= 4 {
			s = strings.ReplaceAll(s, tok, "<redacted>")
		}
	}
	return s
}

// fail maps an SDK error to an *apperr.Error: 401/403 → permanent FabricAuth, other
// 4xx → permanent FabricRejected, 429/5xx/network → transient.
func (d *databricksFabric) fail(op string, err error) error {
	if err == nil {
		return nil
	}
	var fe *apperr.Error
	if errors.As(err, &fe) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var ae *apierr.APIError
	if errors.As(err, &ae) {
		// A copy without the request (whose headers hold the token) keeps errors.Is working.
		clean := &apierr.APIError{ErrorCode: ae.ErrorCode, Message: d.redact(ae.Message), StatusCode: ae.StatusCode}
		detail := strings.TrimSpace(fmt.Sprintf("%d %s", ae.StatusCode, ae.ErrorCode)) + ": " + clean.Message // HEAD answers carry no error code
		switch {
		case ae.StatusCode == http.StatusUnauthorized || ae.StatusCode == http.StatusForbidden:
			return &apperr.Error{Type: apperr.FabricAuth, Cause: clean,
				Msg: fmt.Sprintf("databricks fabric %q (%s) refused %s (%s); %s", d.name, d.where(), op, detail, d.credentialHint())}
		case ae.StatusCode == http.StatusTooManyRequests || ae.StatusCode >= 500:
			return &apperr.Error{Type: apperr.FabricUnavailable, Cause: clean,
				Msg: fmt.Sprintf("databricks fabric %q (%s): %s: %s (will retry)", d.name, d.where(), op, detail)}
		case ae.StatusCode >= 400:
			return &apperr.Error{Type: apperr.FabricRejected, Cause: clean,
				Msg: fmt.Sprintf("databricks fabric %q (%s) rejected %s: %s", d.name, d.where(), op, detail)}
		}
	}
	if errors.Is(err, config.ErrCannotConfigureDefault) {
		return &apperr.Error{Type: apperr.FabricAuth,
			Msg: fmt.Sprintf("databricks fabric %q (%s): no credentials: %s", d.name, d.where(), d.credentialHint())}
	}
	return &apperr.Error{Type: apperr.FabricUnavailable, Cause: err,
		Msg: fmt.Sprintf("databricks fabric %q (%s): %s: %s (will retry)", d.name, d.where(), op, d.redact(err.Error()))}
}
