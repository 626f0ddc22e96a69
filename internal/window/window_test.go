package window

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func at(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func office(zone string) Recurring {
	return Recurring{Days: []string{"mon", "tue", "wed", "thu", "fri"}, Hours: "08:00-17:00", Timezone: zone}
}

func TestAt(t *testing.T) {
	yearEnd := Freeze{Reason: "year-end freeze", Timezone: "Europe/Berlin"}
	yearEnd.From, _ = ParseTime("2026-12-21 00:00", "Europe/Berlin")
	yearEnd.To, _ = ParseTime("2027-01-04 08:00", "Europe/Berlin")
	weekendFreeze := Freeze{Reason: "migration", From: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC), To: time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)}
	berlin := &Spec{Open: []Recurring{office("Europe/Berlin")}}
	cases := []struct {
		name     string
		sched    Schedule
		now      string
		open     bool
		until    string // RFC 3339; "" with open false: no opening within the horizon
		message  string // substring of Message
		nReasons int
	}{
		{name: "no rules", sched: For("prod", nil, nil), now: "2026-11-28T10:00:00Z", open: true},
		{name: "inside office hours", sched: For("prod", berlin, nil), now: "2026-11-24T11:00:00Z", open: true},
		{name: "saturday waits for monday", sched: For("prod", berlin, nil), now: "2026-11-28T10:00:00Z",
			until: "2026-11-30T07:00:00Z", message: "closed until Mon 08:00 Europe/Berlin: outside the change windows of stage prod (mon-fri 08:00-17:00 Europe/Berlin)"},
		{name: "the end is closed", sched: For("prod", berlin, nil), now: "2026-11-24T16:00:00Z", until: "2026-11-25T07:00:00Z", message: "Wed 08:00"},
		{name: "a minute before the start", sched: For("prod", berlin, nil), now: "2026-11-24T06:59:00Z", until: "2026-11-24T07:00:00Z"},
		{name: "the start is open", sched: For("prod", berlin, nil), now: "2026-11-24T07:00:00Z", open: true},
		{name: "year-end freeze, date far away", sched: For("prod", &Spec{Open: berlin.Open, Freezes: []Freeze{yearEnd}}, nil), now: "2026-12-23T09:00:00Z",
			until: "2027-01-04T07:00:00Z", message: "closed until Mon 2027-01-04 08:00 Europe/Berlin: year-end freeze", nReasons: 1},
		{name: "year-end freeze, this week", sched: For("prod", &Spec{Open: berlin.Open, Freezes: []Freeze{yearEnd}}, nil), now: "2026-12-31T09:00:00Z",
			until: "2027-01-04T07:00:00Z", message: "closed until Mon 08:00 Europe/Berlin: year-end freeze"},
		{name: "freeze alone", sched: For("prod", &Spec{Freezes: []Freeze{weekendFreeze}}, nil), now: "2026-11-27T13:00:00Z",
			until: "2026-11-28T12:00:00Z", message: "closed until Sat 12:00 UTC: migration"},
		{name: "freeze ends outside the windows", sched: For("prod", &Spec{Open: berlin.Open, Freezes: []Freeze{weekendFreeze}}, nil), now: "2026-11-27T13:00:00Z",
			until: "2026-11-30T07:00:00Z", message: "closed until Mon 08:00 Europe/Berlin: migration; then outside the change windows", nReasons: 2},
		{name: "freeze boundary: to is open", sched: For("prod", &Spec{Freezes: []Freeze{weekendFreeze}}, nil), now: "2026-11-28T12:00:00Z", open: true},
		{name: "freeze boundary: from is closed", sched: For("prod", &Spec{Freezes: []Freeze{weekendFreeze}}, nil), now: "2026-11-27T12:00:00Z", until: "2026-11-28T12:00:00Z"},
		{name: "platform freeze for another stage", sched: For("qa", nil, &Spec{Freezes: []Freeze{{Reason: "x", From: weekendFreeze.From, To: weekendFreeze.To, Stages: []string{"prod"}}}}),
			now: "2026-11-27T13:00:00Z", open: true},
		{name: "platform freeze for every stage", sched: For("qa", nil, &Spec{Freezes: []Freeze{weekendFreeze}}), now: "2026-11-27T13:00:00Z", until: "2026-11-28T12:00:00Z"},
		{name: "midnight-crossing: after midnight", sched: For("s", &Spec{Open: []Recurring{{Days: []string{"fri"}, Hours: "22:00-06:00", Timezone: "UTC"}}}, nil),
			now: "2026-11-28T05:59:00Z", open: true},
		{name: "midnight-crossing: closes at its end", sched: For("s", &Spec{Open: []Recurring{{Days: []string{"fri"}, Hours: "22:00-06:00", Timezone: "UTC"}}}, nil),
			now: "2026-11-28T06:00:00Z", until: "2026-12-04T22:00:00Z", message: "closed until Fri 2026-12-04 22:00 UTC"},
		{name: "midnight-crossing: before it", sched: For("s", &Spec{Open: []Recurring{{Days: []string{"fri"}, Hours: "22:00-06:00", Timezone: "UTC"}}}, nil),
			now: "2026-11-27T21:00:00Z", until: "2026-11-27T22:00:00Z"},
		{name: "midnight-crossing: not on the day after", sched: For("s", &Spec{Open: []Recurring{{Days: []string{"fri"}, Hours: "22:00-06:00", Timezone: "UTC"}}}, nil),
			now: "2026-11-28T23:00:00Z", until: "2026-12-04T22:00:00Z"},
		{name: "whole day", sched: For("s", &Spec{Open: []Recurring{{Days: []string{"sat"}, Hours: "00:00-24:00", Timezone: "UTC"}}}, nil),
			now: "2026-11-27T23:00:00Z", until: "2026-11-28T00:00:00Z"},
		{name: "whole day: last minute open", sched: For("s", &Spec{Open: []Recurring{{Days: []string{"sat"}, Hours: "00:00-24:00", Timezone: "UTC"}}}, nil),
			now: "2026-11-28T23:59:00Z", open: true},
		{name: "weekday list", sched: For("s", &Spec{Open: []Recurring{{Days: []string{"tue", "thu"}, Hours: "10:00-11:00", Timezone: "UTC"}}}, nil),
			now: "2026-11-24T11:00:00Z", until: "2026-11-26T10:00:00Z", message: "(tue,thu 10:00-11:00 UTC)"},
		{name: "two windows of a level: either", sched: For("s", &Spec{Open: []Recurring{
			{Days: []string{"mon"}, Hours: "10:00-11:00", Timezone: "UTC"}, {Days: []string{"tue"}, Hours: "09:00-10:00", Timezone: "UTC"}}}, nil),
			now: "2026-11-23T12:00:00Z", until: "2026-11-24T09:00:00Z"},
		{name: "platform and stage levels: both", sched: For("prod", &Spec{Open: []Recurring{{Days: []string{"mon", "tue"}, Hours: "08:00-20:00", Timezone: "UTC"}}},
			&Spec{Open: []Recurring{{Days: []string{"tue", "wed"}, Hours: "12:00-14:00", Timezone: "UTC"}}}),
			now: "2026-11-23T13:00:00Z", until: "2026-11-24T12:00:00Z", nReasons: 1},
		{name: "levels that never meet", sched: For("prod", &Spec{Open: []Recurring{{Days: []string{"mon"}, Hours: "08:00-09:00", Timezone: "UTC"}}},
			&Spec{Open: []Recurring{{Days: []string{"tue"}, Hours: "08:00-09:00", Timezone: "UTC"}}}),
			now: "2026-11-23T13:00:00Z", message: "no opening within 400 days", nReasons: 2},
		// Spring forward in Berlin: 2026-03-29 02:00 CET → 03:00 CEST (01:00 UTC).
		{name: "DST gap, Berlin: opens when the clocks jump", sched: For("s", &Spec{Open: []Recurring{{Days: []string{"sun"}, Hours: "02:30-04:00", Timezone: "Europe/Berlin"}}}, nil),
			now: "2026-03-29T00:30:00Z", until: "2026-03-29T01:00:00Z"},
		{name: "DST gap, Berlin: open right after the jump", sched: For("s", &Spec{Open: []Recurring{{Days: []string{"sun"}, Hours: "02:30-04:00", Timezone: "Europe/Berlin"}}}, nil),
			now: "2026-03-29T01:00:00Z", open: true},
		{name: "DST gap, Berlin: closes at 04:00 CEST", sched: For("s", &Spec{Open: []Recurring{{Days: []string{"sun"}, Hours: "02:30-04:00", Timezone: "Europe/Berlin"}}}, nil),
			now: "2026-03-29T02:00:00Z", until: "2026-04-05T00:30:00Z"},
		// Spring forward in New York: 2026-03-08 02:00 EST → 03:00 EDT (07:00 UTC).
		{name: "DST gap, New York", sched: For("s", &Spec{Open: []Recurring{{Days: []string{"sun"}, Hours: "02:30-05:00", Timezone: "America/New_York"}}}, nil),
			now: "2026-03-08T06:00:00Z", until: "2026-03-08T07:00:00Z"},
		{name: "office hours on the spring-forward monday-less sunday", sched: For("s", &Spec{Open: []Recurring{{Days: []string{"sun"}, Hours: "08:00-17:00", Timezone: "Europe/Berlin"}}}, nil),
			now: "2026-03-29T05:59:00Z", until: "2026-03-29T06:00:00Z"},
		// Fall back in Berlin: 2026-10-25 03:00 CEST → 02:00 CET (01:00 UTC); 02:30 happens twice.
		{name: "DST overlap, Berlin: opens at the first 02:30", sched: For("s", &Spec{Open: []Recurring{{Days: []string{"sun"}, Hours: "02:30-03:30", Timezone: "Europe/Berlin"}}}, nil),
			now: "2026-10-25T00:00:00Z", until: "2026-10-25T00:30:00Z"},
		{name: "DST overlap, Berlin: open through the repeated hour", sched: For("s", &Spec{Open: []Recurring{{Days: []string{"sun"}, Hours: "02:30-03:30", Timezone: "Europe/Berlin"}}}, nil),
			now: "2026-10-25T02:00:00Z", open: true},
		{name: "DST overlap, Berlin: closes at 03:30 CET", sched: For("s", &Spec{Open: []Recurring{{Days: []string{"sun"}, Hours: "02:30-03:30", Timezone: "Europe/Berlin"}}}, nil),
			now: "2026-10-25T02:30:00Z", until: "2026-11-01T01:30:00Z"},
		{name: "DST overlap, New York: first 01:30 is EDT", sched: For("s", &Spec{Open: []Recurring{{Days: []string{"sun"}, Hours: "01:30-01:45", Timezone: "America/New_York"}}}, nil),
			now: "2026-11-01T05:00:00Z", until: "2026-11-01T05:30:00Z"},
		{name: "DST overlap, New York: closed in the repeated hour after its end", sched: For("s", &Spec{Open: []Recurring{{Days: []string{"sun"}, Hours: "01:30-01:45", Timezone: "America/New_York"}}}, nil),
			now: "2026-11-01T06:35:00Z", until: "2026-11-08T06:30:00Z"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			now := at(t, c.now)
			st, err := c.sched.At(now)
			if err != nil {
				t.Fatal(err)
			}
			if st.Open != c.open {
				t.Fatalf("open = %v, want %v (%s)", st.Open, c.open, st.Message(now))
			}
			if c.open {
				return
			}
			var want time.Time
			if c.until != "" {
				want = at(t, c.until)
			}
			if !st.Until.Equal(want) {
				t.Errorf("until = %s, want %s", st.Until.UTC().Format(time.RFC3339), want.Format(time.RFC3339))
			}
			if msg := st.Message(now); !strings.Contains(msg, c.message) {
				t.Errorf("message = %q, want it to contain %q", msg, c.message)
			}
			if c.nReasons > 0 && len(st.Reasons) != c.nReasons {
				t.Errorf("reasons = %q, want %d", st.Reasons, c.nReasons)
			}
			// The opening it names is open, and the minute before it is not.
			if !st.Until.IsZero() {
				after, _ := c.sched.At(st.Until)
				before, _ := c.sched.At(st.Until.Add(-time.Second))
				if !after.Open || before.Open {
					t.Errorf("at until: open %v, a second before: open %v", after.Open, before.Open)
				}
			}
		})
	}
}

func TestParseHours(t *testing.T) {
	for _, c := range []struct {
		in         string
		start, end int
		err        string
	}{
		{in: "08:00-17:00", start: 480, end: 1020},
		{in: "22:00-06:00", start: 1320, end: 360},
		{in: "00:00-24:00", start: 0, end: 1440},
		{in: "8-17", err: "not a time"},
		{in: "08:00", err: "not HH:MM-HH:MM"},
		{in: "17:00-17:00", err: "is empty"},
		{in: "25:00-26:00", err: "past 23:59"},
		{in: "24:00-06:00", err: "past 23:59"},
		{in: "08:60-09:00", err: "not a time"},
	} {
		start, end, err := ParseHours(c.in)
		switch {
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("ParseHours(%q) error = %v, want %q", c.in, err, c.err)
		case c.err == "" && (err != nil || start != c.start || end != c.end):
			t.Errorf("ParseHours(%q) = %d, %d, %v", c.in, start, end, err)
		}
	}
}

func TestParseDays(t *testing.T) {
	for in, want := range map[string][]string{
		"mon": {"mon"}, "Monday": {"mon"}, "SUN": {"sun"}, "mon-fri": {"mon", "tue", "wed", "thu", "fri"}, "fri-mon": {"fri", "sat", "sun", "mon"},
	} {
		got, err := ParseDays(in)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("ParseDays(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"funday", "mon-xyz", ""} {
		if _, err := ParseDays(in); err == nil || !strings.Contains(err.Error(), "not a weekday") {
			t.Errorf("ParseDays(%q) error = %v", in, err)
		}
	}
	if got := DescribeDays([]string{"sun", "mon", "tue", "wed", "fri"}); got != "mon-wed,fri,sun" {
		t.Errorf("DescribeDays = %q", got)
	}
}

func TestZonesAndTimes(t *testing.T) {
	if _, err := LoadZone("Europe/Berln"); err == nil || !strings.Contains(err.Error(), "not an IANA time zone") {
		t.Errorf("bad zone: %v", err)
	}
	if _, err := LoadZone("Local"); err == nil {
		t.Error("Local accepted")
	}
	got, err := ParseTime("2026-12-21 08:00", "Europe/Berlin")
	if err != nil || !got.Equal(time.Date(2026, 12, 21, 7, 0, 0, 0, time.UTC)) {
		t.Errorf("local time: %v %v", got, err)
	}
	got, err = ParseTime("2026-12-21T08:00:00-05:00", "Europe/Berlin") // the offset wins
	if err != nil || !got.Equal(time.Date(2026, 12, 21, 13, 0, 0, 0, time.UTC)) {
		t.Errorf("RFC 3339: %v %v", got, err)
	}
	if got, err = ParseTime("2026-12-21", ""); err != nil || !got.Equal(time.Date(2026, 12, 21, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("date: %v %v", got, err)
	}
	if _, err = ParseTime("next tuesday", ""); err == nil {
		t.Error("bad time accepted")
	}
}
