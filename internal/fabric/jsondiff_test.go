package fabric

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func decodeJSON(t *testing.T, s string) any {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// Every difference between what was deployed and the live job is named, so
// that a second hand edit changes the drift a plan shows (and its hash).
func TestDiffSubsetNamesEveryDifference(t *testing.T) {
	want := decodeJSON(t, `{"name": "daily", "max_concurrent_runs": 1, "timeout_seconds": 3600,
		"tasks": [{"task_key": "a", "max_retries": 1}, {"task_key": "b", "max_retries": 2}], "tags": {"owner": "data"}}`)
	for _, c := range []struct {
		live string
		want string
	}{
		{`{"name": "daily", "max_concurrent_runs": 1.0, "timeout_seconds": 3600, "extra": true,
			"tasks": [{"task_key": "b", "max_retries": 2}, {"task_key": "a", "max_retries": 1}], "tags": {"owner": "data"}}`, ""},
		{`{"name": "daily", "max_concurrent_runs": 4, "timeout_seconds": 3600,
			"tasks": [{"task_key": "a", "max_retries": 1}, {"task_key": "b", "max_retries": 2}], "tags": {"owner": "data"}}`,
			"max_concurrent_runs: deployed 1, live 4"},
		{`{"name": "daily", "max_concurrent_runs": 4, "timeout_seconds": 60,
			"tasks": [{"task_key": "a", "max_retries": 5}, {"task_key": "c", "max_retries": 2}], "tags": {}}`,
			"max_concurrent_runs: deployed 1, live 4; tags.owner: deployed \"data\", missing live; " +
				"tasks[task_key=a].max_retries: deployed 1, live 5; tasks[task_key=b]: missing live; " +
				"tasks[task_key=c]: not deployed, live has {\"max_retries\":2,\"task_key\":\"c\"}; timeout_seconds: deployed 3600, live 60"},
	} {
		if got := diffSubset("", want, decodeJSON(t, c.live)); got != c.want {
			t.Errorf("diff against %s\n got %q\nwant %q", c.live, got, c.want)
		}
	}
}

// Long values are cut, with their checksum: two values that differ only
// past the cut still read differently.
func TestDiffSubsetLongValues(t *testing.T) {
	long := strings.Repeat("x", 100)
	want := decodeJSON(t, fmt.Sprintf(`{"description": %q}`, long+"1"))
	a := diffSubset("", want, decodeJSON(t, fmt.Sprintf(`{"description": %q}`, long+"2")))
	b := diffSubset("", want, decodeJSON(t, fmt.Sprintf(`{"description": %q}`, long+"3")))
	if a == "" || a == b || !strings.Contains(a, "sha256 ") || len(a) > 300 {
		t.Errorf("long values: %q and %q", a, b)
	}
}

// The differences named stop at maxDiffs, and say how many more there are.
func TestDiffSubsetCapsTheList(t *testing.T) {
	var w, l []string
	for i := range maxDiffs + 5 {
		w = append(w, fmt.Sprintf(`"k%02d": 1`, i))
		l = append(l, fmt.Sprintf(`"k%02d": 2`, i))
	}
	got := diffSubset("", decodeJSON(t, "{"+strings.Join(w, ",")+"}"), decodeJSON(t, "{"+strings.Join(l, ",")+"}"))
	if n := strings.Count(got, "deployed 1, live 2"); n != maxDiffs || !strings.Contains(got, "; and 5 more differences (sha256 ") {
		t.Errorf("%d differences named, ending %q", n, got[len(got)-40:])
	}
}

// A further hand edit of a difference past the ones named still changes the
// drift text (the checksum of the rest), so a plan's hash follows it.
func TestDiffSubsetChangePastTheCap(t *testing.T) {
	var w, l1, l2 []string
	for i := range maxDiffs + 5 {
		w = append(w, fmt.Sprintf(`"k%02d": 1`, i))
		l1 = append(l1, fmt.Sprintf(`"k%02d": 2`, i))
		v := 2
		if i == maxDiffs+2 {
			v = 3
		}
		l2 = append(l2, fmt.Sprintf(`"k%02d": %d`, i, v))
	}
	want := decodeJSON(t, "{"+strings.Join(w, ",")+"}")
	a := diffSubset("", want, decodeJSON(t, "{"+strings.Join(l1, ",")+"}"))
	b := diffSubset("", want, decodeJSON(t, "{"+strings.Join(l2, ",")+"}"))
	if a == b {
		t.Errorf("a change past the cap leaves the drift text the same: %q", b[len(b)-60:])
	}
}

// Two reads of one live job whose API lists its extra tasks in another order
// give the same drift text: a gate does not reopen for nothing.
func TestDiffSubsetExtrasInKeyOrder(t *testing.T) {
	want := decodeJSON(t, `{"tasks": [{"task_key": "a"}]}`)
	a := diffSubset("", want, decodeJSON(t, `{"tasks": [{"task_key": "a"}, {"task_key": "c"}, {"task_key": "b"}]}`))
	b := diffSubset("", want, decodeJSON(t, `{"tasks": [{"task_key": "a"}, {"task_key": "b"}, {"task_key": "c"}]}`))
	if a != b || !strings.HasPrefix(a, "tasks[task_key=b]") {
		t.Errorf("same live job, tasks listed in another order:\n%q\n%q", a, b)
	}
}
