package s3server_test

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"gocloud.dev/blob"
	_ "gocloud.dev/blob/s3blob"
	"gocloud.dev/gcerrors"

	"github.com/shipline/shipline/test/s3server"
)

// TestSeaweedFSThroughGocloud drives the server the way Shipline's storage
// does, through gocloud.dev/blob's s3blob opened from a URL with Shipline's
// identity in the environment: write, read, list, attributes, overwrite,
// delete, under a prefix.
func TestSeaweedFSThroughGocloud(t *testing.T) {
	srv := s3server.Start(t, s3server.Options{Bucket: "cache"})
	srv.SetEnv(t)
	ctx := context.Background()

	b, err := blob.OpenBucket(ctx, srv.BucketURL("team/a"))
	if err != nil {
		t.Fatalf("open %s: %v", srv.BucketURL("team/a"), err)
	}
	defer b.Close()

	objects := map[string]string{
		"builds/ingest_orders/abc/ingest_orders-1.0.0-py3-none-any.whl": strings.Repeat("wheel bytes ", 100000), // > 1 MB
		"builds/enrich/def/enrich.jar":                                  "jar bytes",
		"logs/deploy-1/build.log":                                       "log line\n",
	}
	for k, v := range objects {
		if err := b.WriteAll(ctx, k, []byte(v), nil); err != nil {
			t.Fatalf("write %s: %v", k, err)
		}
	}
	for k, v := range objects {
		got, err := b.ReadAll(ctx, k)
		if err != nil || string(got) != v {
			t.Fatalf("read %s: %d bytes, %v; want %d bytes", k, len(got), err, len(v))
		}
		a, err := b.Attributes(ctx, k)
		if err != nil || a.Size != int64(len(v)) {
			t.Fatalf("attributes of %s: %+v, %v", k, a, err)
		}
	}

	var keys []string
	it := b.List(&blob.ListOptions{Prefix: "builds/"})
	for {
		o, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("list: %v", err)
		}
		keys = append(keys, o.Key)
	}
	slices.Sort(keys)
	want := []string{"builds/enrich/def/enrich.jar", "builds/ingest_orders/abc/ingest_orders-1.0.0-py3-none-any.whl"}
	if !slices.Equal(keys, want) {
		t.Fatalf("list builds/: %v, want %v", keys, want)
	}

	// The prefix is real: the objects sit under team/a/ in the bucket.
	out, err := srv.Client().ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("cache"), Prefix: aws.String("team/a/logs/")})
	if err != nil || len(out.Contents) != 1 || aws.ToString(out.Contents[0].Key) != "team/a/logs/deploy-1/build.log" {
		t.Fatalf("raw listing of team/a/logs/: %v %+v", err, out)
	}

	if err := b.WriteAll(ctx, "logs/deploy-1/build.log", []byte("replaced\n"), nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.ReadAll(ctx, "logs/deploy-1/build.log"); string(got) != "replaced\n" {
		t.Fatalf("after overwrite: %q", got)
	}
	if err := b.Delete(ctx, "builds/enrich/def/enrich.jar"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := b.ReadAll(ctx, "builds/enrich/def/enrich.jar"); gcerrors.Code(err) != gcerrors.NotFound {
		t.Fatalf("read after delete: %v, want NotFound", err)
	}
	if ok, err := b.Exists(ctx, "builds/enrich/def/enrich.jar"); ok || err != nil {
		t.Fatalf("exists after delete: %v %v", ok, err)
	}
}

// TestSeaweedFSChecksCredentials: the server enforces the identity file — a
// wrong secret is refused, and Shipline's identity reaches its own bucket
// only. (An in-memory fake that accepted anything would fail here.)
func TestSeaweedFSChecksCredentials(t *testing.T) {
	srv := s3server.Start(t, s3server.Options{Bucket: "mine"})
	ctx := context.Background()

	srv.SetEnv(t)
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong")
	b, err := blob.OpenBucket(ctx, srv.BucketURL(""))
	if err != nil {
		t.Fatal(err)
	}
	err = b.WriteAll(ctx, "k", []byte("v"), nil)
	b.Close()
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "SignatureDoesNotMatch" {
		t.Fatalf("write with a wrong secret: %v, want SignatureDoesNotMatch", err)
	}

	_, err = srv.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("other")})
	if err == nil {
		t.Fatal("Shipline's identity created a bucket; its identity grants its own bucket only")
	}
	if _, err := srv.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("mine"), Key: aws.String("k"), Body: strings.NewReader("v")}); err != nil {
		t.Fatalf("put into its own bucket: %v", err)
	}
}

// TestStopEndsTheServer: Stop ends the process and is idempotent.
func TestStopEndsTheServer(t *testing.T) {
	srv := s3server.Start(t, s3server.Options{})
	if !srv.Running() {
		t.Fatal("not running after Start")
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	if srv.Running() {
		t.Fatal("still running after Stop")
	}
	if err := srv.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
}
