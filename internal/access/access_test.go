package access

import (
	"errors"
	"strings"
	"testing"
)

func TestRelease(t *testing.T) {
	admins := []string{"alice"}
	if err := Release("demo", admins, "alice"); err != nil {
		t.Fatalf("admin refused: %v", err)
	}
	err := Release("demo", admins, "bob")
	var d *Denied
	if !errors.As(err, &d) {
		t.Fatalf("non-admin: got %v, want *Denied", err)
	}
	for _, want := range []string{"bob may not release project demo", "alice", "projects.demo.admins"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q lacks %q", err, want)
		}
	}
	if err := Release("demo", admins, ""); err == nil || !strings.Contains(err.Error(), "--as") {
		t.Fatalf("empty actor: got %v", err)
	}
}

func TestDeploy(t *testing.T) {
	if err := Deploy("prod", "prod_support", []string{"carol"}, "carol"); err != nil {
		t.Fatal(err)
	}
	err := Deploy("prod", "prod_support", []string{"carol"}, "bob")
	if err == nil || !strings.Contains(err.Error(), "owned by team prod_support (carol)") {
		t.Fatalf("got %v", err)
	}
}
