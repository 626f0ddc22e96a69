package pkgindex

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"path"
	"regexp"
	"strings"

	"golang.org/x/crypto/blake2b"

	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/storage"
)

// pypiIndex uploads through PyPI's legacy upload API, the one twine speaks
// (https://docs.pypi.org/api/upload/): a multipart/form-data POST of
// `:action=file_upload`, `protocol_version=1`, the wheel's core metadata
// as form fields, its digests and the `content` file part, with basic auth
// (`__token__` and the token, or a user and password). It reads what the
// index holds from its PEP 503 simple pages.
type pypiIndex struct {
	*remote
	upload string
	// simple is the simple index's URL, ending in "/".
	simple string
}

// tokenUser is the user name PyPI-compatible indexes take with an API token.
const tokenUser = "__token__"

func openPyPI(_ context.Context, c Config) (Index, error) {
	u, err := checkHTTPURL(c, c.URL)
	if err != nil {
		return nil, err
	}
	simple := simpleURLOf(u)
	if c.SimpleURL != "" {
		s, err := url.Parse(c.SimpleURL)
		if err != nil || (s.Scheme != "http" && s.Scheme != "https") || s.Host == "" || s.User != nil || origin(s) != origin(u) {
			return nil, configError(c, "simple_url %q is not an http(s) URL on the index's own scheme and host (%s), without credentials: the credentials go to it",
				storage.Redact(c.SimpleURL), origin(u))
		}
		s.RawQuery, s.Fragment = "", ""
		s.Path = strings.TrimSuffix(s.Path, "/") + "/"
		simple = s.String()
	}
	p := &pypiIndex{remote: newRemote(c, tokenUser), upload: u.String(), simple: simple}
	p.trust(p.simple)
	return p, nil
}

// simpleURLOf is where an upload URL's index serves its simple pages:
// PyPI and TestPyPI serve https://upload.pypi.org/legacy/ at
// https://pypi.org/simple/; other warehouse-like servers serve …/legacy/ at
// …/simple/; Artifactory, Nexus, GitLab, CodeArtifact and pypiserver serve
// <url> at <url>/simple/. Others (devpi: <index>/+simple/) are named by
// platform.yaml's simple_url.
func simpleURLOf(upload *url.URL) string {
	u := *upload
	u.RawQuery, u.Fragment = "", ""
	switch u.Host {
	case "upload.pypi.org":
		return "https://pypi.org/simple/"
	case "test.pypi.org":
		return "https://test.pypi.org/simple/"
	}
	p := strings.TrimSuffix(u.Path, "/")
	if before, ok := strings.CutSuffix(p, "/legacy"); ok {
		p = before
	}
	u.Path = p + "/simple/"
	return u.String()
}

func (p *pypiIndex) projectPage(name string) string {
	return p.simple + url.PathEscape(Normalize(name)) + "/"
}

func (p *pypiIndex) Publish(ctx context.Context, f File) (Result, error) {
	pf, err := checkPythonFile(p.c, f)
	if err != nil {
		return Result{}, err
	}
	if _, wheel := parseWheelName(pf.Filename); !wheel {
		return Result{}, inputError("publish %s to package index %s: the pypi kind publishes wheels (.whl); build the library as a wheel", pf.Filename, p.c.Name)
	}
	sum, err := fileSHA256(pf.Path)
	if err != nil {
		return Result{}, err
	}
	// What the index holds already decides first: an upload of the same file
	// is answered differently by each server (PyPI says 200, others 400 or
	// 409). Credentials that may upload but not read the pages leave the
	// decision to the upload's answer.
	if res, done, err := p.compare(ctx, pf, sum); done || (err != nil && apperr.Type(err) != apperr.IndexAuth) {
		return res, err
	}
	resp, err := p.post(ctx, pf)
	if err != nil {
		return Result{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		_, _ = io.Copy(io.Discard, resp.Body)
		return Result{URL: p.fileURL(ctx, pf.Name, pf.Filename)}, nil
	}
	err = p.statusError("upload "+pf.Filename+" to "+storage.Redact(p.upload), resp)
	if !fileExists(resp.StatusCode, err) {
		return Result{}, err
	}
	// The index says the file exists, though its simple page did not list
	// it (a cache, a page behind other credentials): compare again.
	res, done, cerr := p.compare(ctx, pf, sum)
	if done {
		return res, cerr
	}
	why := "does not list it"
	if cerr != nil {
		why = "cannot be read (" + cerr.Error() + ")"
	}
	return Result{}, &apperr.Error{Type: apperr.IndexRejected, Msg: err.Error() + fmt.Sprintf(
		"; the index holds %s already but its page %s %s, so its sha256 cannot be compared with %s: "+
			"if it is the same file, nothing is to do; otherwise release a new version (a library takes the release's version)", pf.Filename, p.projectPage(pf.Name), why, sum)}
}

// fileExists reports whether an upload's refusal says the file exists:
// PyPI answers 400 "File already exists", pypiserver 409, Nexus 400
// "… cannot be updated", Artifactory 403 "… overwrite …", GitLab 400
// "… already been taken" (the cases twine's --skip-existing knows).
func fileExists(status int, err error) bool {
	msg := strings.ToLower(err.Error())
	switch status {
	case http.StatusConflict:
		return true
	case http.StatusBadRequest:
		return strings.Contains(msg, "already exist") || strings.Contains(msg, "updating asset") ||
			strings.Contains(msg, "cannot be updated") || strings.Contains(msg, "already been taken")
	case http.StatusForbidden:
		return strings.Contains(msg, "overwrite artifact") || strings.Contains(msg, "already exist")
	}
	return false
}

// compare looks for the file on the index's simple page, then in its JSON
// API (PyPI's /pypi/<name>/<version>/json, which some indexes serve): done
// with AlreadyPublished for the same sha256, a refusal for another; not done
// when neither lists it.
func (p *pypiIndex) compare(ctx context.Context, pf pythonFile, sum string) (Result, bool, error) {
	page := p.projectPage(pf.Name)
	links, err := p.readPage(ctx, page)
	if err != nil {
		return Result{}, false, err
	}
	l, ok := links[pf.Filename]
	if !ok {
		if l, ok = p.jsonLink(ctx, pf); !ok {
			return Result{}, false, nil
		}
	}
	there := l.SHA256
	if there == "" {
		// No sha256 on the page: read the file itself.
		there, err = p.download(ctx, l.URL)
		if err != nil {
			return Result{}, false, err
		}
	}
	if there != sum {
		return Result{}, true, conflict(p.c, pf.File, pf.Filename, there, sum)
	}
	return Result{URL: l.URL, AlreadyPublished: true}, true, nil
}

// jsonLink finds the file in the index's JSON API (PyPI's release
// endpoint); ok is false when the index has none or it does not list it.
func (p *pypiIndex) jsonLink(ctx context.Context, pf pythonFile) (remoteLink, bool) {
	root, ok := strings.CutSuffix(p.simple, "/simple/")
	if !ok {
		return remoteLink{}, false
	}
	u := root + "/pypi/" + url.PathEscape(Normalize(pf.Name)) + "/" + url.PathEscape(normVersion(pf.Version)) + "/json"
	body, found, err := p.get(ctx, u)
	if err != nil || !found {
		return remoteLink{}, false
	}
	var release struct {
		URLs []struct {
			Filename string            `json:"filename"`
			URL      string            `json:"url"`
			Digests  map[string]string `json:"digests"`
		} `json:"urls"`
	}
	if json.Unmarshal(body, &release) != nil {
		return remoteLink{}, false
	}
	for _, f := range release.URLs {
		if f.Filename == pf.Filename {
			return remoteLink{URL: f.URL, SHA256: strings.ToLower(f.Digests["sha256"])}, f.URL != "" || f.Digests["sha256"] != ""
		}
	}
	return remoteLink{}, false
}

// fileURL is the URL the simple page gives the file, or the page's.
func (p *pypiIndex) fileURL(ctx context.Context, name, filename string) string {
	if links, err := p.readPage(ctx, p.projectPage(name)); err == nil {
		if l, ok := links[filename]; ok {
			return l.URL
		}
	}
	return p.projectPage(name)
}

func (p *pypiIndex) download(ctx context.Context, u string) (string, error) {
	sum, found, err := p.digest(ctx, u)
	if err != nil {
		return "", err
	}
	if !found {
		return "", &apperr.Error{Type: apperr.IndexRejected, Msg: fmt.Sprintf("package index %s lists %s but answers 404 for it", p.c.Name, storage.Redact(u))}
	}
	return sum, nil
}

func (p *pypiIndex) Has(ctx context.Context, name, version string) (bool, error) {
	if !validName.MatchString(name) {
		return false, inputError("package index %s: %q is not a Python package name", p.c.Name, name)
	}
	links, err := p.readPage(ctx, p.projectPage(name))
	if err != nil {
		return false, err
	}
	for fn := range links {
		if n, v, ok := fileVersion(fn); ok && Normalize(n) == Normalize(name) && normVersion(v) == normVersion(version) {
			return true, nil
		}
	}
	return false, nil
}

// remoteLink is a file on a simple page.
type remoteLink struct {
	URL, SHA256 string
}

// anyAnchor matches the anchors of any PEP 503 page.
var anyAnchor = regexp.MustCompile(`(?is)<a\s[^>]*?href\s*=\s*["']([^"']+)["'][^>]*>`)

// readPage reads a simple project page (none when the index answers 404).
func (p *pypiIndex) readPage(ctx context.Context, page string) (map[string]remoteLink, error) {
	body, found, err := p.get(ctx, page)
	if err != nil || !found {
		return nil, err
	}
	base, _ := url.Parse(page)
	out := map[string]remoteLink{}
	for _, m := range anyAnchor.FindAllStringSubmatch(string(body), -1) {
		ref, err := url.Parse(html.UnescapeString(m[1]))
		if err != nil {
			continue
		}
		abs := base.ResolveReference(ref)
		frag := abs.Fragment
		abs.Fragment = ""
		fn, err := url.PathUnescape(path.Base(abs.EscapedPath()))
		if err != nil {
			continue
		}
		l := remoteLink{URL: abs.String()}
		if h, ok := strings.CutPrefix(frag, "sha256="); ok {
			l.SHA256 = strings.ToLower(h)
		}
		out[fn] = l
	}
	return out, nil
}

// metadataFields maps core metadata fields to the upload form's fields, as
// twine sends them: a single field is sent empty when the wheel lacks it, a
// multiple-use field once per value.
var metadataFields = []struct {
	meta, form string
	multiple   bool
}{
	{"Metadata-Version", "metadata_version", false},
	{"Summary", "summary", false},
	{"Home-Page", "home_page", false},
	{"Author", "author", false},
	{"Author-Email", "author_email", false},
	{"Maintainer", "maintainer", false},
	{"Maintainer-Email", "maintainer_email", false},
	{"License", "license", false},
	{"Keywords", "keywords", false},
	{"Platform", "platform", true},
	{"Classifier", "classifiers", true},
	{"Download-Url", "download_url", false},
	{"Supported-Platform", "supported_platform", true},
	{"Provides", "provides", true},
	{"Requires", "requires", true},
	{"Obsoletes", "obsoletes", true},
	{"Project-Url", "project_urls", true},
	{"Provides-Dist", "provides_dist", true},
	{"Obsoletes-Dist", "obsoletes_dist", true},
	{"Requires-Dist", "requires_dist", true},
	{"Requires-External", "requires_external", true},
	{"Requires-Python", "requires_python", false},
	{"Provides-Extra", "provides_extras", true},
	{"Description-Content-Type", "description_content_type", false},
	{"Dynamic", "dynamic", true},
	// Metadata 2.4, which newer twine sends and warehouse reads.
	{"License-Expression", "license_expression", false},
	{"License-File", "license_files", true},
}

// UploadForm returns the form fields of a wheel's upload, in order: what
// the legacy upload API takes, read from the wheel's own METADATA.
func UploadForm(wheelPath string) ([][2]string, error) {
	md, err := WheelMetadata(wheelPath)
	if err != nil {
		return nil, err
	}
	w, ok := parseWheelName(path.Base(wheelPath))
	if !ok {
		return nil, inputError("%s is not a wheel file name (name-version-py-abi-platform.whl)", wheelPath)
	}
	sha, md5sum, b2, err := uploadDigests(wheelPath)
	if err != nil {
		return nil, err
	}
	form := [][2]string{
		{":action", "file_upload"},
		{"protocol_version", "1"},
		{"name", safeName(md.Get("Name"))},
		{"version", md.Get("Version")},
		{"filetype", "bdist_wheel"},
		{"pyversion", w.Python},
	}
	for _, f := range metadataFields {
		switch {
		case f.multiple:
			for _, v := range md.All(f.meta) {
				form = append(form, [2]string{f.form, v})
			}
		case f.form == "license_expression":
			if v := md.Get(f.meta); v != "" {
				form = append(form, [2]string{f.form, v})
			}
		default:
			form = append(form, [2]string{f.form, md.Get(f.meta)})
		}
	}
	description := md.Body
	if description == "" {
		description = md.Get("Description")
	}
	form = append(form, [2]string{"description", description}, [2]string{"comment", ""})
	form = append(form,
		[2]string{"sha256_digest", sha},
		[2]string{"md5_digest", md5sum},
		[2]string{"blake2_256_digest", b2})
	return form, nil
}

// uploadDigests streams the file once through the hashes the upload API
// takes (a wheel may be large: it is never held in memory).
func uploadDigests(path string) (sha, md5sum, b2 string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", "", "", err
	}
	defer f.Close()
	hs, hm := sha256.New(), md5.New()
	hb, err := blake2b.New256(nil)
	if err != nil {
		return "", "", "", err
	}
	if _, err := io.Copy(io.MultiWriter(hs, hm, hb), f); err != nil {
		return "", "", "", err
	}
	return hex.EncodeToString(hs.Sum(nil)), hex.EncodeToString(hm.Sum(nil)), hex.EncodeToString(hb.Sum(nil)), nil
}

// safeName is the name as twine and PyPI's warehouse want it: runs of
// characters other than letters, digits and "." become one "-".
func safeName(name string) string {
	return unsafeRuns.ReplaceAllString(name, "-")
}

var unsafeRuns = regexp.MustCompile(`[^A-Za-z0-9.]+`)

// post uploads the wheel: the form fields, then the file, streamed with a
// known length (some servers refuse chunked uploads).
func (p *pypiIndex) post(ctx context.Context, pf pythonFile) (*http.Response, error) {
	form, err := UploadForm(pf.Path)
	if err != nil {
		return nil, err
	}
	file, err := os.Open(pf.Path)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	st, err := file.Stat()
	if err != nil {
		return nil, err
	}
	var head, tail bytes.Buffer
	sink := &switchWriter{w: &head}
	mw := multipart.NewWriter(sink)
	for _, kv := range form {
		if err := mw.WriteField(kv[0], kv[1]); err != nil {
			return nil, err
		}
	}
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="content"; filename="%s"`, pf.Filename))
	h.Set("Content-Type", "application/octet-stream")
	if _, err := mw.CreatePart(h); err != nil {
		return nil, err
	}
	sink.w = &tail
	if err := mw.Close(); err != nil {
		return nil, err
	}
	body := io.MultiReader(bytes.NewReader(head.Bytes()), io.LimitReader(file, st.Size()), bytes.NewReader(tail.Bytes()))
	req, err := http.NewRequest(http.MethodPost, p.upload, body)
	if err != nil {
		return nil, configError(p.c, "bad url: %v", err)
	}
	req.ContentLength = int64(head.Len()) + st.Size() + int64(tail.Len())
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return p.do(ctx, req)
}

// switchWriter writes to w, which may change between writes.
type switchWriter struct{ w io.Writer }

func (s *switchWriter) Write(b []byte) (int, error) { return s.w.Write(b) }
