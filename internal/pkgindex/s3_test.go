package pkgindex_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/pkgindex"
	"github.com/shipline/shipline/internal/pkgindex/pkgindextest"
	"github.com/shipline/shipline/internal/storage"
	"github.com/shipline/shipline/test/s3server"
)

// bucketFront serves a bucket over HTTP the way a static web site in front
// of it does: a path ending in "/" serves its index.html, every object with
// the content type it was written with.
func bucketFront(t *testing.T, st *storage.Store) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := strings.TrimPrefix(r.URL.Path, "/")
		if key == "" || strings.HasSuffix(key, "/") {
			key += "index.html"
		}
		a, err := st.Bucket().Attributes(r.Context(), key)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		body, err := st.Get(r.Context(), key)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		defer body.Close()
		w.Header().Set("Content-Type", a.ContentType)
		_, _ = io.Copy(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// The simple and maven kinds on a real S3 server: immutability, pages
// served as HTML, and pip installing through an HTTP front of the bucket.
func TestIndexesOnS3(t *testing.T) {
	s3 := s3server.Start(t, s3server.Options{})
	s3.SetEnv(t)
	ctx := context.Background()

	simple, err := pkgindex.Open(ctx, pkgindex.Config{Name: "internal", Kind: "simple", URL: s3.StorageURL("pypi")})
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	whl := pkgindextest.Wheel(t, src, "common", "1.0.0", pkgindextest.WheelOptions{Code: "X = 's3'"})
	res := publish(t, simple, "common", "1.0.0", whl)
	if res.URL != "s3://"+s3.Bucket+"/pypi/common/"+filepath.Base(whl) || res.AlreadyPublished {
		t.Errorf("result %+v", res)
	}
	if res := publish(t, simple, "common", "1.0.0", whl); !res.AlreadyPublished {
		t.Error("the same bytes again are not AlreadyPublished")
	}
	other := pkgindextest.Wheel(t, t.TempDir(), "common", "1.0.0", pkgindextest.WheelOptions{Code: "X = 'other'"})
	if _, err := simple.Publish(ctx, pkgindex.File{Name: "common", Version: "1.0.0", Path: other}); apperr.Type(err) != apperr.VersionAlreadyPublished {
		t.Errorf("other bytes: %v", err)
	}
	if ok, err := simple.Has(ctx, "Common", "1.0.0"); err != nil || !ok {
		t.Errorf("Has = %v, %v", ok, err)
	}

	st, err := storage.Open(ctx, s3.StorageURL("pypi"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	front := bucketFront(t, st)
	target := t.TempDir()
	if out, err := pip(t, "install", "--no-deps", "--index-url", front.URL+"/", "--target", target, "common==1.0.0"); err != nil {
		t.Fatalf("pip install: %v\n%s", err, out)
	}
	if code, err := os.ReadFile(filepath.Join(target, "common", "__init__.py")); err != nil || !strings.Contains(string(code), "'s3'") {
		t.Errorf("installed %q, %v", code, err)
	}

	maven, err := pkgindex.Open(ctx, pkgindex.Config{Name: "jars", Kind: "maven", URL: s3.StorageURL("maven")})
	if err != nil {
		t.Fatal(err)
	}
	jar := pkgindextest.Jar(t, src, "a.jar", "on s3")
	if _, err := publishJar(maven, "1.0.0", jar); err != nil {
		t.Fatal(err)
	}
	if res, err := publishJar(maven, "1.0.0", jar); err != nil || !res.AlreadyPublished {
		t.Errorf("same jar again: %+v, %v", res, err)
	}
	if _, err := publishJar(maven, "1.0.0", pkgindextest.Jar(t, src, "b.jar", "other")); apperr.Type(err) != apperr.VersionAlreadyPublished {
		t.Errorf("other jar: %v", err)
	}
	mst, err := storage.Open(ctx, s3.StorageURL("maven"))
	if err != nil {
		t.Fatal(err)
	}
	defer mst.Close()
	for _, k := range []string{groupDir + "/1.0.0/common-utils-1.0.0.jar", groupDir + "/1.0.0/common-utils-1.0.0.pom.sha1", groupDir + "/maven-metadata.xml.md5"} {
		if ok, err := mst.Exists(ctx, k); err != nil || !ok {
			t.Errorf("%s: %v, %v", k, ok, err)
		}
	}
	if ok, err := maven.Has(ctx, group+":"+artifact, "1.0.0"); err != nil || !ok {
		t.Errorf("Has = %v, %v", ok, err)
	}

	// Credentials the bucket refuses: an auth error to fix, not a retry.
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong")
	if _, err := simple.Publish(ctx, pkgindex.File{Name: "common", Version: "1.0.1", Path: pkgindextest.Wheel(t, src, "common", "1.0.1", pkgindextest.WheelOptions{})}); apperr.Type(err) != apperr.IndexAuth || !strings.Contains(err.Error(), "AWS_ACCESS_KEY_ID") {
		t.Errorf("simple with wrong credentials: %v (type %q)", err, apperr.Type(err))
	}
	if _, err := maven.Has(ctx, group+":"+artifact, "1.0.0"); apperr.Type(err) != apperr.IndexAuth {
		t.Errorf("maven with wrong credentials: %v (type %q)", err, apperr.Type(err))
	}
}
