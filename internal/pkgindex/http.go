package pkgindex

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/storage"
)

// httpTimeout bounds one request to an index (an upload of a large file
// included): a silent index becomes a transient error, never a hang.
const httpTimeout = 10 * time.Minute

// remote is what the HTTP kinds share: the client, the credentials and the
// reading of answers as Shipline's errors.
type remote struct {
	c      Config
	client *http.Client
	// user and pass are the basic-auth credentials ("" for none); bearer a
	// token sent as such (maven without a user).
	user, pass, bearer string
	// origins are where the credentials go (scheme://host of the index's
	// URL and of its simple pages): a page may link files on other hosts,
	// or on the same host over plain http, which get none.
	origins []string
}

// origin is scheme://host of u.
func origin(u *url.URL) string { return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host) }

// trust adds the origin of u to those the credentials go to.
func (r *remote) trust(u string) {
	if p, err := url.Parse(u); err == nil && p.Host != "" && !slices.Contains(r.origins, origin(p)) {
		r.origins = append(r.origins, origin(p))
	}
}

func newRemote(c Config, tokenUser string) *remote {
	r := &remote{c: c, client: &http.Client{
		Timeout: httpTimeout,
		// Reads follow redirects (the client drops the credentials when
		// the host changes); an upload does not, since a redirect loses its
		// body: the index's URL must be the final one (statusError says so).
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if via[0].Method != http.MethodGet && via[0].Method != http.MethodHead {
				return http.ErrUseLastResponse
			}
			if len(via) >= 10 {
				return errors.New("stopped after 10 redirects")
			}
			return nil
		},
	}}
	switch {
	case c.Token != "" && c.Username != "" && tokenUser == "":
		r.user, r.pass = c.Username, c.Token
	case c.Token != "" && tokenUser != "":
		r.user, r.pass = tokenUser, c.Token
	case c.Token != "":
		r.bearer = c.Token
	case c.Username != "" || c.Password != "":
		r.user, r.pass = c.Username, c.Password
	}
	r.trust(c.URL)
	return r
}

// checkHTTPURL checks an index URL that must be http(s).
func checkHTTPURL(c Config, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, configError(c, "url %q is not an http:// or https:// URL", storage.Redact(raw))
	}
	if u.User != nil {
		return nil, configError(c, "url %q holds credentials: name their environment variables in platform.yaml instead", storage.Redact(raw))
	}
	return u, nil
}

// do sends req with the index's credentials.
func (r *remote) do(ctx context.Context, req *http.Request) (*http.Response, error) {
	req = req.WithContext(ctx)
	switch {
	case !slices.Contains(r.origins, origin(req.URL)):
		// Another host, or plain http (a file the index links elsewhere):
		// no credentials.
	case r.bearer != "":
		req.Header.Set("Authorization", "Bearer "+r.bearer)
	case r.user != "" || r.pass != "":
		req.SetBasicAuth(r.user, r.pass)
	}
	req.Header.Set("User-Agent", "shipline")
	resp, err := r.client.Do(req)
	if err != nil {
		// Network trouble is transient: the activity retries. The cause
		// without *url.Error's text, which repeats the URL unredacted.
		return nil, fmt.Errorf("package index %s: %s %s: %w", r.c.Name, req.Method, storage.Redact(req.URL.String()), cause(err))
	}
	return resp, nil
}

// get fetches u; found is false on 404/410.
func (r *remote) get(ctx context.Context, u string) (body []byte, found bool, err error) {
	rc, found, err := r.open(ctx, u)
	if err != nil || !found {
		return nil, found, err
	}
	defer rc.Close()
	body, err = io.ReadAll(rc)
	if err != nil {
		return nil, false, fmt.Errorf("package index %s: read %s: %w", r.c.Name, storage.Redact(u), err)
	}
	return body, true, nil
}

// digest streams u and returns its hex sha256 (a published file may be
// large: it is never held in memory); found is false on 404/410.
func (r *remote) digest(ctx context.Context, u string) (sum string, found bool, err error) {
	rc, found, err := r.open(ctx, u)
	if err != nil || !found {
		return "", found, err
	}
	defer rc.Close()
	if sum, err = readerSHA256(rc); err != nil {
		return "", false, fmt.Errorf("package index %s: read %s: %w", r.c.Name, storage.Redact(u), err)
	}
	return sum, true, nil
}

// open starts reading u; found is false on 404/410. The caller closes the body.
func (r *remote) open(ctx context.Context, u string) (body io.ReadCloser, found bool, err error) {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return nil, false, configError(r.c, "bad URL %q: %v", storage.Redact(u), cause(err))
	}
	resp, err := r.do(ctx, req)
	if err != nil {
		return nil, false, err
	}
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		resp.Body.Close()
		return nil, false, nil
	case resp.StatusCode >= 300:
		defer resp.Body.Close()
		return nil, false, r.statusError("read "+storage.Redact(u), resp)
	}
	return resp.Body, true, nil
}

// statusError turns an answer that is no success into Shipline's error:
// auth refusals, rejections (4xx), unavailability (5xx, 429: transient).
func (r *remote) statusError(op string, resp *http.Response) error {
	msg := answerText(resp)
	where := fmt.Sprintf("package index %s: %s: HTTP %d", r.c.Name, op, resp.StatusCode)
	if msg != "" {
		where += ": " + strings.TrimSuffix(msg, ".")
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		fix := "no credentials were given: set the environment variables named in platform.yaml's package_indexes." + r.c.Name
		if r.user != "" || r.pass != "" || r.bearer != "" {
			fix = "check the credentials (the environment variables named in platform.yaml's package_indexes." + r.c.Name + "): they are wrong or may not do this"
		}
		return &apperr.Error{Type: apperr.IndexAuth, Msg: where + "; " + fix}
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return &apperr.Error{Type: apperr.IndexConfig, Msg: fmt.Sprintf("%s (redirected to %s); set package_indexes.%s.url to the final URL",
			where, storage.Redact(resp.Header.Get("Location")), r.c.Name)}
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return &apperr.Error{Type: apperr.IndexUnavailable, Msg: where}
	}
	return &apperr.Error{Type: apperr.IndexRejected, Msg: where}
}

// answerText is the start of an error answer's text, for messages: PyPI
// puts it in the status line's reason and the body, others in the body.
func answerText(resp *http.Response) string {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
	text := strings.TrimSpace(stripTags(string(data)))
	// Many servers start the body with the status line again.
	text = strings.TrimSpace(strings.TrimPrefix(text, fmt.Sprintf("%d %s", resp.StatusCode, http.StatusText(resp.StatusCode))))
	if reason := strings.TrimSpace(strings.TrimPrefix(resp.Status, fmt.Sprint(resp.StatusCode))); text == "" && reason != http.StatusText(resp.StatusCode) {
		text = reason
	}
	text = strings.Join(strings.Fields(text), " ")
	if len(text) > 400 {
		text = text[:400] + "…"
	}
	return text
}

// stripTags drops HTML tags from an error page.
func stripTags(s string) string {
	var b strings.Builder
	in := false
	for _, r := range s {
		switch {
		case r == '<':
			in = true
		case r == '>':
			in = false
			b.WriteByte(' ')
		case !in:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// newRequest is http.NewRequest with the URL redacted from its error.
func newRequest(method, u string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		return nil, fmt.Errorf("bad URL %s: %w", storage.Redact(u), cause(err))
	}
	return req, nil
}

// cause is err without *url.Error's text, which repeats the URL unredacted.
func cause(err error) error {
	if c := errors.Unwrap(err); c != nil {
		return c
	}
	return err
}
