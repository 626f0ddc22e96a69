package access

import (
	"errors"
	"slices"
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

var (
	devOwner  = Owner{Fabric: "dev", Team: "developers", Members: []string{"alice", "bob", "carol"}}
	prodOwner = Owner{Fabric: "prod", Team: "prod_support", Members: []string{"carol"}}
)

func TestDeployAll(t *testing.T) {
	cases := []struct {
		name   string
		owners []Owner
		actor  string
		denied string // "" when allowed, else a fragment of the refusal
	}{
		{"owner of every fabric", []Owner{devOwner, prodOwner}, "carol", ""},
		{"owner of one fabric only", []Owner{devOwner, prodOwner}, "bob", "bob may not deploy to fabric prod: fabric prod is owned by team prod_support (carol)"},
		{"first refusal is named", []Owner{prodOwner, devOwner}, "dave", "fabric prod"},
		{"no fabrics", nil, "dave", ""},
		{"no actor", []Owner{devOwner}, "", "no actor was named"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			checkRule(t, DeployAll(c.owners, c.actor), c.denied)
		})
	}
}

func TestControlDeployment(t *testing.T) {
	const id = "deploy/demo/v1.0.0/cli-1"
	cases := []struct {
		name   string
		owners []Owner
		actor  string
		denied string
	}{
		{"the deployer", []Owner{prodOwner}, "bob", ""},
		{"a member of every owner team", []Owner{devOwner, prodOwner}, "carol", ""},
		{"a member of one owner team only", []Owner{devOwner, prodOwner}, "alice", "alice may not resume " + id + ": alice may not deploy to fabric prod"},
		{"an outsider", []Owner{devOwner}, "mallory", "mallory may not resume " + id},
		{"nobody", []Owner{devOwner}, "", "no actor was named; pass --as USER or set SHIPLINE_USER"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			checkRule(t, ControlDeployment(id, "resume", "bob", c.owners, c.actor), c.denied)
		})
	}
}

func TestControlRelease(t *testing.T) {
	cases := []struct {
		actor  string
		denied string
	}{
		{"bob", ""},   // the releaser
		{"alice", ""}, // an admin
		{"mallory", "mallory may not cancel this release: only the releaser (bob) or a project admin may"},
		{"", "no actor was named"},
	}
	for _, c := range cases {
		t.Run(c.actor, func(t *testing.T) {
			checkRule(t, ControlRelease("cancel", "bob", []string{"alice"}, c.actor), c.denied)
		})
	}
}

func TestVote(t *testing.T) {
	strict := Gate{Stage: "prod", Team: "prod_support", Members: []string{"carol", "dave", "erin"}}
	relaxed := strict
	relaxed.SelfApproval = true
	withCI := Gate{Stage: "prod", Team: "prod_support", Members: []string{"carol", "ci", "dave"}, Services: []string{"ci"}}
	withCIRelaxed := withCI
	withCIRelaxed.SelfApproval = true
	// The promotion was requested by dave, the release made by erin.
	cases := []struct {
		name   string
		gate   Gate
		actor  string
		denied string
	}{
		{"a member", strict, "carol", ""},
		{"an outsider", strict, "bob", "bob may not vote on prod: only members of prod_support may (carol, dave, erin)"},
		{"the requester, self-approval off", strict, "dave", "dave may not vote on prod: self-approval is off"},
		{"the releaser, self-approval off", strict, "erin", "erin may not vote on prod: self-approval is off"},
		{"the requester, self-approval on", relaxed, "dave", ""},
		{"the releaser, self-approval on", relaxed, "erin", ""},
		{"an outsider, self-approval on", relaxed, "bob", "only members of prod_support"},
		{"nobody", strict, "", "no actor was named"},
		{"a service identity in the team", withCI, "ci", "ci may not vote on prod: ci is a service identity (users.ci.service in platform.yaml)"},
		{"a service identity in the team, self-approval on", withCIRelaxed, "ci", "only people approve or reject"},
		{"a person in a team with a service identity", withCI, "carol", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			checkRule(t, Vote(c.gate, "dave", "erin", c.actor), c.denied)
		})
	}
	if got := Voters(strict, "dave", "erin"); !slices.Equal(got, []string{"carol"}) {
		t.Errorf("voters with self-approval off = %v", got)
	}
	if got := Voters(relaxed, "dave", "erin"); !slices.Equal(got, []string{"carol", "dave", "erin"}) {
		t.Errorf("voters with self-approval on = %v", got)
	}
	if got := Voters(withCIRelaxed, "dave", "erin"); !slices.Equal(got, []string{"carol", "dave"}) {
		t.Errorf("voters of a team with a service identity = %v, want the people only", got)
	}
}

func checkRule(t *testing.T, err error, denied string) {
	t.Helper()
	switch {
	case denied == "" && err != nil:
		t.Fatalf("refused: %v", err)
	case denied != "" && err == nil:
		t.Fatalf("allowed; want a refusal with %q", denied)
	case denied != "" && !strings.Contains(err.Error(), denied):
		t.Fatalf("refusal %q lacks %q", err, denied)
	}
}

// Running a job on a fabric needs the same right as deploying there.
func TestRunNeedsTheRightToDeploy(t *testing.T) {
	if err := Run("prod", "prod_support", []string{"carol"}, "carol"); err != nil {
		t.Fatal(err)
	}
	err := Run("prod", "prod_support", []string{"carol"}, "bob")
	if err == nil || !strings.Contains(err.Error(), "bob may not run jobs on fabric prod: fabric prod is owned by team prod_support (carol)") ||
		!strings.Contains(err.Error(), "needs the right to deploy there") {
		t.Fatalf("got %v", err)
	}
	if err := Run("prod", "prod_support", []string{"carol"}, ""); err == nil {
		t.Fatal("an anonymous run was allowed")
	}
}

func TestStageOwnerRules(t *testing.T) {
	owners := []Owner{{Fabric: "qa", Team: "developers", Members: []string{"alice", "bob"}}, {Fabric: "qa-af", Team: "data", Members: []string{"alice"}}}
	for _, rule := range []func(string, []Owner, string) error{EmergencyRollback, ClearHold} {
		if err := rule("qa", owners, "alice"); err != nil {
			t.Errorf("alice owns every fabric of qa: %v", err)
		}
		err := rule("qa", owners, "bob")
		var d *Denied
		if !errors.As(err, &d) || !strings.Contains(err.Error(), "fabric qa-af is owned by team data (alice)") {
			t.Errorf("bob is not in data: %v", err)
		}
		if err := rule("qa", owners, ""); err == nil {
			t.Error("an anonymous actor passed")
		}
	}
}
