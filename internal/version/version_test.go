package version

import (
	"reflect"
	"testing"
)

func TestValid(t *testing.T) {
	for v, want := range map[string]bool{
		"v1.0.0": true, "v0.1.2": true, "v1.3.0-rc.1": true, "v10.20.30-alpha-2": true,
		"1.0.0": false, "v1.0": false, "v1": false, "v01.0.0": false, "v1.0.0+build": false,
		"v1.0.0-": false, "": false, "latest": false, "v1.0.0/../x": false,
	} {
		if got := Valid(v); got != want {
			t.Errorf("Valid(%q) = %v, want %v", v, got, want)
		}
	}
	if err := Check("1.0"); err == nil {
		t.Fatal("Check(1.0) accepted an invalid version")
	}
}

func TestLatestAndSort(t *testing.T) {
	vs := []string{"v1.2.0", "v1.10.0-rc.1", "v1.9.0", "v0.9.9", "junk"}
	if got := Latest(vs); got != "v1.9.0" {
		t.Fatalf("Latest = %q, want v1.9.0", got)
	}
	if got := Latest([]string{"v2.0.0-rc.1", "v2.0.0-rc.2"}); got != "v2.0.0-rc.2" {
		t.Fatalf("Latest of prereleases = %q", got)
	}
	s := []string{"v1.2.0", "v1.10.0", "v1.9.0"}
	Sort(s)
	if want := []string{"v1.10.0", "v1.9.0", "v1.2.0"}; !reflect.DeepEqual(s, want) {
		t.Fatalf("Sort = %v, want %v", s, want)
	}
}
