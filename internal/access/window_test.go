package access

import (
	"errors"
	"strings"
	"testing"
)

func TestOverrideWindow(t *testing.T) {
	owners := []Owner{{Fabric: "prod", Team: "prod_support", Members: []string{"carol", "dave"}}}
	if err := OverrideWindow("prod", owners, "carol", "hotfix for INC-42"); err != nil {
		t.Fatalf("owner refused: %v", err)
	}
	err := OverrideWindow("prod", owners, "bob", "hotfix")
	var d *Denied
	if !errors.As(err, &d) {
		t.Fatalf("outsider: got %v, want *Denied", err)
	}
	for _, want := range []string{"bob may not override the change windows of stage prod", "prod_support (carol, dave)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q lacks %q", err, want)
		}
	}
	if err := OverrideWindow("prod", owners, "carol", "  "); err == nil || !strings.Contains(err.Error(), "--reason") {
		t.Errorf("no reason: got %v", err)
	}
	if err := OverrideWindow("prod", owners, "", "x"); err == nil || !strings.Contains(err.Error(), "--as") {
		t.Errorf("no actor: got %v", err)
	}
	// Every fabric of the stage: an owner of one only is refused.
	two := append(owners, Owner{Fabric: "prod-eu", Team: "eu_ops", Members: []string{"erin"}})
	if err := OverrideWindow("prod", two, "carol", "x"); err == nil || !strings.Contains(err.Error(), "prod-eu") {
		t.Errorf("owner of one fabric: got %v", err)
	}
}
