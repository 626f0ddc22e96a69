package window

import (
	"strings"
	"testing"
	"time"
)

// Overlapping freezes: the stage stays closed until the last of them that
// keeps it closed ends, and the message names each, in order.
func TestOverlappingFreezes(t *testing.T) {
	utc := func(d, h int) time.Time { return time.Date(2026, 12, d, h, 0, 0, 0, time.UTC) }
	yearEnd := Freeze{Reason: "year-end freeze", From: utc(20, 0), To: utc(28, 0)}
	migration := Freeze{Reason: "db migration", From: utc(27, 0), To: utc(30, 12)}
	inside := Freeze{Reason: "audit", From: utc(22, 0), To: utc(23, 0)}
	past := Freeze{Reason: "last year", From: utc(1, 0).AddDate(-1, 0, 0), To: utc(2, 0).AddDate(-1, 0, 0)}
	s := For("prod", &Spec{Freezes: []Freeze{inside, past, migration}}, &Spec{Freezes: []Freeze{yearEnd}})
	for _, c := range []struct {
		now     time.Time
		until   time.Time
		message string
	}{
		{utc(21, 9), utc(30, 12), "closed until Wed 2026-12-30 12:00 UTC: year-end freeze; then db migration"},
		{utc(22, 9), utc(30, 12), "closed until Wed 2026-12-30 12:00 UTC: year-end freeze; then db migration"},
		{utc(28, 9), utc(30, 12), "closed until Wed 12:00 UTC: db migration"},
	} {
		st, err := s.At(c.now)
		if err != nil {
			t.Fatal(err)
		}
		if st.Open || !st.Until.Equal(c.until) || st.Message(c.now) != c.message {
			t.Errorf("at %s: open %v until %s %q, want until %s %q", c.now, st.Open, st.Until, st.Message(c.now), c.until, c.message)
		}
	}
	if st, _ := s.At(utc(30, 12)); !st.Open {
		t.Errorf("at the end of the last freeze: %s", st.Message(utc(30, 12)))
	}
	if st, _ := s.At(utc(10, 0)); !st.Open || strings.Contains(st.Message(utc(10, 0)), "last year") {
		t.Errorf("a past freeze closes: %s", st.Message(utc(10, 0)))
	}
}
