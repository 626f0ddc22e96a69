// Package window computes change windows and freezes: whether a stage is open
// at an instant, and if not, until when it stays closed and why.
//
// A stage's schedule has levels of recurring open windows (its own
// `windows.open`, and the platform-wide `windows.open` entries that apply to
// it) and absolute freezes (its own and the platform's). It is open at t when,
// for every level that defines windows, t is inside at least one of that
// level's windows, and t is inside no freeze.
//
// Recurring windows are wall-clock times in an IANA time zone: `08:00-17:00`
// on the listed weekdays; `22:00-06:00` crosses midnight (the listed day is the
// day it starts); `00:00-24:00` is the whole day. On a day the clocks change,
// a window opens at the first instant the wall clock reaches its start (when
// the start falls in the skipped hour, the moment the clocks jump) and closes
// at the first instant it reaches its end (the earlier of a repeated hour).
//
// The package is pure: no clock, no I/O. Time zone data comes from the
// time/tzdata copy embedded in the binary when the system has none.
package window

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // zones load on machines without a zoneinfo database
)

// Recurring is an open window: on Days, during Hours, in Timezone.
type Recurring struct {
	// Days are weekday names, normalised to mon … sun.
	Days []string `json:"days"`
	// Hours is "HH:MM-HH:MM" (local wall clock; an end before the start ends the next day).
	Hours    string `json:"hours"`
	Timezone string `json:"timezone"`
	// Stages limits a platform-wide window to these stages (empty: every stage).
	Stages []string `json:"stages,omitempty"`
}

// Freeze closes from From to To, with a Reason people read.
type Freeze struct {
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	Reason string    `json:"reason"`
	// Timezone is the zone From and To were written in (for messages); empty: UTC.
	Timezone string `json:"timezone,omitempty"`
	// Stages limits a platform-wide freeze to these stages (empty: every stage).
	Stages []string `json:"stages,omitempty"`
}

// Spec is one `windows:` block: a stage's, or the platform's.
type Spec struct {
	Open    []Recurring `json:"open,omitempty"`
	Freezes []Freeze    `json:"freezes,omitempty"`
}

// Level is one set of open windows a schedule requires to be open (one of them).
type Level struct {
	// Name says whose windows they are ("stage prod", "the platform"), for messages.
	Name    string      `json:"name"`
	Windows []Recurring `json:"windows"`
}

// Schedule is what decides whether one stage is open.
type Schedule struct {
	Stage   string   `json:"stage"`
	Levels  []Level  `json:"levels,omitempty"`
	Freezes []Freeze `json:"freezes,omitempty"`
}

// For is the schedule of a stage: its own windows and freezes, and the
// platform-wide ones that apply to it (no Stages, or Stages naming it).
func For(stage string, own, platform *Spec) Schedule {
	s := Schedule{Stage: stage}
	applies := func(stages []string) bool { return len(stages) == 0 || slices.Contains(stages, stage) }
	if platform != nil {
		var ws []Recurring
		for _, w := range platform.Open {
			if applies(w.Stages) {
				ws = append(ws, w)
			}
		}
		if len(ws) > 0 {
			s.Levels = append(s.Levels, Level{Name: "the platform", Windows: ws})
		}
	}
	if own != nil && len(own.Open) > 0 {
		// The stage's own level first: its zone is the one messages use.
		s.Levels = append([]Level{{Name: "stage " + stage, Windows: own.Open}}, s.Levels...)
	}
	if own != nil {
		s.Freezes = append(s.Freezes, own.Freezes...)
	}
	if platform != nil {
		for _, f := range platform.Freezes {
			if applies(f.Stages) {
				s.Freezes = append(s.Freezes, f)
			}
		}
	}
	return s
}

// Empty: the schedule has no windows and no freezes (always open).
func (s Schedule) Empty() bool { return len(s.Levels) == 0 && len(s.Freezes) == 0 }

// Horizon bounds the search for the next opening.
const Horizon = 400 * 24 * time.Hour

// Status is a schedule's answer at one instant.
type Status struct {
	Open bool `json:"open"`
	// Until is when it opens next; zero while open, or when it does not open
	// within Horizon.
	Until time.Time `json:"until,omitempty"`
	// Reasons say why it is closed now, then what else keeps it closed until Until.
	Reasons []string `json:"reasons,omitempty"`
	// Zone is the time zone messages use (the stage's first window's, else
	// the first freeze's, else UTC).
	Zone string `json:"zone,omitempty"`
}

// At says whether the schedule is open at now and, if not, until when.
// Timezones were checked when the config was read; a zone that no longer
// loads is an error.
func (s Schedule) At(now time.Time) (Status, error) {
	levels := make([][]compiled, 0, len(s.Levels))
	for _, l := range s.Levels {
		var cs []compiled
		for _, w := range l.Windows {
			c, err := compile(w)
			if err != nil {
				return Status{}, fmt.Errorf("%s: %w", l.Name, err)
			}
			cs = append(cs, c)
		}
		levels = append(levels, cs)
	}
	st := Status{Zone: s.zone()}
	t := now
	for range 10000 {
		if t.Sub(now) > Horizon {
			st.Until = time.Time{}
			return st, nil
		}
		if f, ok := s.frozen(t); ok {
			st.addReason(f.Reason)
			t = f.To
			continue
		}
		moved := false
		for i, cs := range levels {
			if inside(cs, t) {
				continue
			}
			st.addReason(fmt.Sprintf("outside the change windows of %s (%s)", s.Levels[i].Name, describe(s.Levels[i].Windows)))
			t = nextStart(cs, t)
			moved = true
			break
		}
		if !moved {
			break
		}
	}
	if t.Equal(now) {
		return Status{Open: true, Zone: st.Zone}, nil
	}
	st.Until = t
	return st, nil
}

// frozen returns the freeze t is in that ends last.
func (s Schedule) frozen(t time.Time) (Freeze, bool) {
	var out Freeze
	found := false
	for _, f := range s.Freezes {
		if !t.Before(f.From) && t.Before(f.To) && (!found || f.To.After(out.To)) {
			out, found = f, true
		}
	}
	return out, found
}

func (s Schedule) zone() string {
	for _, l := range s.Levels {
		for _, w := range l.Windows {
			return w.Timezone
		}
	}
	for _, f := range s.Freezes {
		if f.Timezone != "" {
			return f.Timezone
		}
	}
	return "UTC"
}

func (st *Status) addReason(r string) {
	if !slices.Contains(st.Reasons, r) {
		st.Reasons = append(st.Reasons, r)
	}
}

// Message is the sentence a waiting deploy or promotion says, e.g.
// "closed until Mon 08:00 Europe/Berlin: year-end freeze". The date is
// written when the opening is six days or more after now.
func (st Status) Message(now time.Time) string {
	if st.Open {
		return "open"
	}
	why := strings.Join(st.Reasons, "; then ")
	if st.Until.IsZero() {
		return fmt.Sprintf("closed, with no opening within %d days: %s", int(Horizon.Hours()/24), why)
	}
	return fmt.Sprintf("closed until %s: %s", FormatAt(st.Until, now, st.Zone), why)
}

// FormatAt writes t in zone as "Mon 08:00 Europe/Berlin", with the date
// ("Mon 2027-01-04 08:00 Europe/Berlin") when t is six days or more after now.
func FormatAt(t, now time.Time, zone string) string {
	loc, err := LoadZone(zone)
	if err != nil {
		loc, zone = time.UTC, "UTC"
	}
	lt := t.In(loc)
	if t.Sub(now) >= 6*24*time.Hour {
		return lt.Format("Mon 2006-01-02 15:04 ") + zone
	}
	return lt.Format("Mon 15:04 ") + zone
}

// LoadZone loads an IANA time zone ("Europe/Berlin", "UTC").
func LoadZone(name string) (*time.Location, error) {
	if name == "" {
		return nil, errors.New("no time zone given")
	}
	if name == "Local" {
		return nil, errors.New(`"Local" depends on the machine; name an IANA zone such as Europe/Berlin`)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("%q is not an IANA time zone", name)
	}
	return loc, nil
}

var dayNames = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// ParseDay reads a weekday name: mon, Monday, MON, …
func ParseDay(s string) (time.Weekday, error) {
	l := strings.ToLower(strings.TrimSpace(s))
	for i, d := range dayNames {
		if l == d || l == strings.ToLower(time.Weekday(i).String()) {
			return time.Weekday(i), nil
		}
	}
	return 0, fmt.Errorf("%q is not a weekday (mon, tue, wed, thu, fri, sat, sun)", s)
}

// ParseDays reads a day or a range of days ("mon-fri", "fri-mon" wraps) into
// normalised names in week order from the first.
func ParseDays(s string) ([]string, error) {
	from, to, isRange := strings.Cut(s, "-")
	a, err := ParseDay(from)
	if err != nil {
		return nil, err
	}
	if !isRange {
		return []string{dayNames[a]}, nil
	}
	b, err := ParseDay(to)
	if err != nil {
		return nil, err
	}
	var out []string
	for d := a; ; d = (d + 1) % 7 {
		out = append(out, dayNames[d])
		if d == b {
			return out, nil
		}
	}
}

// ParseHours reads "HH:MM-HH:MM" into minutes after midnight. The end may be
// 24:00; an end before the start crosses midnight; start and end must differ.
func ParseHours(s string) (start, end int, err error) {
	a, b, ok := strings.Cut(strings.TrimSpace(s), "-")
	if !ok {
		return 0, 0, fmt.Errorf("%q is not HH:MM-HH:MM", s)
	}
	if start, err = clock(a, false); err != nil {
		return 0, 0, fmt.Errorf("%q: start %w", s, err)
	}
	if end, err = clock(b, true); err != nil {
		return 0, 0, fmt.Errorf("%q: end %w", s, err)
	}
	if start == end {
		return 0, 0, fmt.Errorf("%q is empty: the start and the end are the same time (write 00:00-24:00 for the whole day)", s)
	}
	return start, end, nil
}

func clock(s string, endOK bool) (int, error) {
	h, m, ok := strings.Cut(strings.TrimSpace(s), ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || err1 != nil || err2 != nil || len(h) != 2 || len(m) != 2 || hh < 0 || mm < 0 || mm > 59 {
		return 0, fmt.Errorf("%q is not a time HH:MM", s)
	}
	if hh == 24 && mm == 0 && endOK {
		return 24 * 60, nil
	}
	if hh > 23 {
		return 0, fmt.Errorf("%q is past 23:59 (24:00 is allowed as an end)", s)
	}
	return hh*60 + mm, nil
}

// ParseTime reads a freeze's from or to: RFC 3339 with an offset
// ("2026-12-21T00:00:00+01:00"), or a local "2026-12-21 08:00",
// "2026-12-21T08:00" or "2026-12-21" (midnight) in zone (empty: UTC).
func ParseTime(s, zone string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	loc := time.UTC
	if zone != "" {
		var err error
		if loc, err = LoadZone(zone); err != nil {
			return time.Time{}, err
		}
	}
	for _, layout := range []string{"2006-01-02 15:04", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time: write 2026-12-21 08:00 (in the freeze's timezone, default UTC) or 2026-12-21T08:00:00+01:00", s)
}

// compiled is a Recurring window ready to compute with.
type compiled struct {
	days       [7]bool
	start, end int
	loc        *time.Location
}

func compile(w Recurring) (compiled, error) {
	var c compiled
	for _, d := range w.Days {
		wd, err := ParseDay(d)
		if err != nil {
			return c, err
		}
		c.days[wd] = true
	}
	var err error
	if c.start, c.end, err = ParseHours(w.Hours); err != nil {
		return c, err
	}
	c.loc, err = LoadZone(w.Timezone)
	return c, err
}

// interval is the window that starts on the local date y-m-d, or ok false
// when the window is not on that weekday.
func (c compiled) interval(y int, m time.Month, d int) (from, to time.Time, ok bool) {
	if !c.days[time.Date(y, m, d, 12, 0, 0, 0, time.UTC).Weekday()] {
		return from, to, false
	}
	from = resolve(c.loc, y, m, d, c.start)
	if c.end > c.start {
		to = resolve(c.loc, y, m, d, c.end)
	} else {
		to = resolve(c.loc, y, m, d+1, c.end)
	}
	return from, to, true
}

// inside: t is in one of the windows (a window that started the day before
// may still be open).
func inside(cs []compiled, t time.Time) bool {
	for _, c := range cs {
		lt := t.In(c.loc)
		for back := -1; back <= 0; back++ {
			if from, to, ok := c.interval(lt.Year(), lt.Month(), lt.Day()+back); ok && !t.Before(from) && t.Before(to) {
				return true
			}
		}
	}
	return false
}

// nextStart is the earliest start of a window after t.
func nextStart(cs []compiled, t time.Time) time.Time {
	var best time.Time
	for _, c := range cs {
		lt := t.In(c.loc)
		for ahead := 0; ahead <= 8; ahead++ {
			from, _, ok := c.interval(lt.Year(), lt.Month(), lt.Day()+ahead)
			if ok && from.After(t) {
				if best.IsZero() || from.Before(best) {
					best = from
				}
				break
			}
		}
	}
	return best
}

// resolve is the first instant at which the wall clock in loc reads the given
// minute of the local date: in a skipped hour, the moment the clocks jump; in
// a repeated hour, the earlier of the two.
func resolve(loc *time.Location, y int, m time.Month, d, minute int) time.Time {
	h, mi := minute/60, minute%60
	c := time.Date(y, m, d, h, mi, 0, 0, loc)
	want := time.Date(y, m, d, h, mi, 0, 0, time.UTC) // the wall clock, as a comparable value
	wall := time.Date(c.Year(), c.Month(), c.Day(), c.Hour(), c.Minute(), 0, 0, time.UTC)
	switch {
	case wall.After(want): // skipped: Go moved past the gap; the gap began the zone c is in
		start, _ := c.ZoneBounds()
		return start
	case wall.Before(want): // skipped: Go stayed before the gap; it ends the zone c is in
		_, end := c.ZoneBounds()
		return end
	}
	// Repeated: the same wall clock may also be read in the zone before c's.
	if start, _ := c.ZoneBounds(); !start.IsZero() {
		_, before := start.Add(-time.Nanosecond).Zone()
		_, off := c.Zone()
		if alt := c.Add(time.Duration(off-before) * time.Second); alt.Before(c) && alt.Before(start) {
			aw := time.Date(alt.Year(), alt.Month(), alt.Day(), alt.Hour(), alt.Minute(), 0, 0, time.UTC)
			if aw.Equal(want) {
				return alt
			}
		}
	}
	return c
}

// describe renders windows for messages: "mon-fri 08:00-17:00 Europe/Berlin".
func describe(ws []Recurring) string {
	var parts []string
	for _, w := range ws {
		parts = append(parts, fmt.Sprintf("%s %s %s", DescribeDays(w.Days), w.Hours, w.Timezone))
	}
	return strings.Join(parts, ", ")
}

// DescribeDays writes days compactly: runs of three or more as "mon-fri".
func DescribeDays(days []string) string {
	var idx []int
	for _, d := range days {
		if wd, err := ParseDay(d); err == nil {
			idx = append(idx, (int(wd)+6)%7) // monday first
		}
	}
	slices.Sort(idx)
	idx = slices.Compact(idx)
	name := func(i int) string { return dayNames[(i+1)%7] }
	var parts []string
	for i := 0; i < len(idx); {
		j := i
		for j+1 < len(idx) && idx[j+1] == idx[j]+1 {
			j++
		}
		switch {
		case j-i >= 2:
			parts = append(parts, name(idx[i])+"-"+name(idx[j]))
		default:
			for k := i; k <= j; k++ {
				parts = append(parts, name(idx[k]))
			}
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}
