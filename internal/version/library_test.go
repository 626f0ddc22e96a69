package version

import "testing"

func TestLibraryVersions(t *testing.T) {
	for _, c := range []struct{ in, py, mvn string }{
		{"v1.2.0", "1.2.0", "1.2.0"},
		{"v1.3.0-rc.1", "1.3.0rc1", "1.3.0-rc.1"},
		{"v1.3.0-beta.2", "1.3.0b2", "1.3.0-beta.2"},
		{"v1.3.0-alpha3", "1.3.0a3", "1.3.0-alpha3"},
		{"v1.3.0-dev.4", "1.3.0.dev4", "1.3.0-dev.4"},
		{"v0.1.0-foo", "", "0.1.0-foo"},
	} {
		py, err := Python(c.in)
		if py != c.py || (err != nil) != (c.py == "") {
			t.Errorf("Python(%s) = %q, %v; want %q", c.in, py, err, c.py)
		}
		mvn, err := Maven(c.in)
		if mvn != c.mvn || err != nil {
			t.Errorf("Maven(%s) = %q, %v; want %q", c.in, mvn, err, c.mvn)
		}
	}
	if _, err := Python("1.2.0"); err == nil {
		t.Error("Python accepted a version without v")
	}
}
