// Package access holds Shipline's access rules, in one place. Every function is
// pure (no I/O, no clock), so workflows call them directly with data that
// activities read from platform.yaml, and a refusal is decided deterministically.
//
// Rules: release / delete release / settings → project admins. Deploy to a
// fabric → members of its owner team. Approve or reject at a stage's gate →
// members of its approval team, not the requester of the promotion nor the
// releaser when self-approval is off (the quorum is the gate's count, not an
// access rule); a service identity (a CI job's key) never votes. Resume or
// cancel a deployment → its deployer, or a member of the owner team of every
// fabric it targets; a release → its releaser, or a project admin. A service
// identity releases, deploys and promotes by the same rules as a person.
//
// A workflow ends a refusal as a non-retryable application error of type
// apperr.AccessDenied.
package access

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Denied is a refusal: who tried what on which target, and why.
type Denied struct {
	Actor  string `json:"actor"`
	Action string `json:"action"`
	Target string `json:"target"`
	Reason string `json:"reason"`
}

func (d *Denied) Error() string {
	return fmt.Sprintf("%s may not %s %s: %s", quoteActor(d.Actor), d.Action, d.Target, d.Reason)
}

func quoteActor(a string) string {
	if a == "" {
		return "an anonymous user"
	}
	return a
}

// Release checks that actor is one of the project's admins; admins is the
// project's `admins` list from platform.yaml.
func Release(project string, admins []string, actor string) error {
	return adminOnly("release", "project "+project, project, admins, actor)
}

// DeleteRelease checks that actor may delete a release of the project.
func DeleteRelease(project string, admins []string, actor string) error {
	return adminOnly("delete releases of", "project "+project, project, admins, actor)
}

func adminOnly(action, target, project string, admins []string, actor string) error {
	if actor == "" {
		return &Denied{Action: action, Target: target, Reason: noActor}
	}
	if slices.Contains(admins, actor) {
		return nil
	}
	return &Denied{Actor: actor, Action: action, Target: target,
		Reason: fmt.Sprintf("only the project's admins may (%s); ask one of them, or a platform admin to add you to projects.%s.admins in platform.yaml", list(admins), project)}
}

// Deploy checks that actor is in the owner team of the fabric.
func Deploy(fabric, ownerTeam string, members []string, actor string) error {
	if actor == "" {
		return &Denied{Action: "deploy to", Target: "fabric " + fabric, Reason: noActor}
	}
	if slices.Contains(members, actor) {
		return nil
	}
	return &Denied{Actor: actor, Action: "deploy to", Target: "fabric " + fabric,
		Reason: fmt.Sprintf("fabric %s is owned by team %s (%s); ask one of them to deploy", fabric, ownerTeam, list(members))}
}

// Run checks that actor may run a deployed job on the fabric: running there
// needs the same right as deploying there (a member of its owner team), so
// only prod_support runs jobs on prod.
func Run(fabric, ownerTeam string, members []string, actor string) error {
	err := Deploy(fabric, ownerTeam, members, actor)
	var d *Denied
	if errors.As(err, &d) {
		return &Denied{Actor: d.Actor, Action: "run jobs on", Target: d.Target,
			Reason: d.Reason + " (running a job on a fabric needs the right to deploy there)"}
	}
	return err
}

// Owner is the owner team of one fabric and that team's members, from platform.yaml.
type Owner struct {
	Fabric  string
	Team    string
	Members []string
}

// DeployAll checks that actor may deploy to every fabric; the refusal names
// the first fabric (in the order given) the actor does not own.
func DeployAll(owners []Owner, actor string) error {
	for _, o := range owners {
		if err := Deploy(o.Fabric, o.Team, o.Members, actor); err != nil {
			return err
		}
	}
	return nil
}

// ControlDeployment checks that actor may resume or cancel (action) the
// deployment: its deployer may, and so may a member of the owner team of every
// fabric it targets.
func ControlDeployment(deployment, action, deployer string, owners []Owner, actor string) error {
	if actor == "" {
		return errors.New(noActor)
	}
	if actor == deployer {
		return nil
	}
	if err := DeployAll(owners, actor); err != nil {
		return fmt.Errorf("%s may not %s %s: %w", actor, action, deployment, err)
	}
	return nil
}

// ControlRelease checks that actor may resume or cancel (action) a release:
// its releaser may, and so may the project's admins.
func ControlRelease(action, releaser string, admins []string, actor string) error {
	if actor == "" {
		return errors.New(noActor)
	}
	if actor == releaser || slices.Contains(admins, actor) {
		return nil
	}
	return fmt.Errorf("%s may not %s this release: only the releaser (%s) or a project admin may", actor, action, releaser)
}

// Gate is a stage's approval: the team whose members vote, and whether the
// requester of the promotion and the releaser may vote too.
type Gate struct {
	Stage        string
	Team         string
	Members      []string
	SelfApproval bool
	// Services are the service identities (users.<name>.service in
	// platform.yaml, e.g. a CI job's key): they never vote, whatever team
	// they are in.
	Services []string
}

// Vote checks that actor may approve or reject at the gate of a promotion
// requested by requester, of a release made by releaser.
func Vote(g Gate, requester, releaser, actor string) error {
	if actor == "" {
		return errors.New(noActor)
	}
	if slices.Contains(g.Services, actor) {
		return fmt.Errorf("%s may not vote on %s: %s is a service identity (users.%s.service in platform.yaml); service identities release, deploy and promote, but only people approve or reject", actor, g.Stage, actor, actor)
	}
	if !slices.Contains(g.Members, actor) {
		return fmt.Errorf("%s may not vote on %s: only members of %s may (%s)", actor, g.Stage, g.Team, strings.Join(g.Members, ", "))
	}
	if !g.SelfApproval && (actor == requester || actor == releaser) {
		return fmt.Errorf("%s may not vote on %s: self-approval is off for this stage and %s requested the promotion or made the release", actor, g.Stage, actor)
	}
	return nil
}

// Voters lists the members who may vote at the gate, in the team's order.
func Voters(g Gate, requester, releaser string) []string {
	var out []string
	for _, m := range g.Members {
		if Vote(g, requester, releaser, m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// noActor is the reason of every refusal of a request that names nobody.
const noActor = "no actor was named; pass --as USER or set SHIPLINE_USER"

func list(names []string) string {
	if len(names) == 0 {
		return "nobody"
	}
	return strings.Join(names, ", ")
}

// EmergencyRollback checks that actor may roll a stage back without its
// approval gate: a member of the owner team of every fabric of the stage.
func EmergencyRollback(stage string, owners []Owner, actor string) error {
	return stageOwner("roll back, as an emergency,", stage, owners, actor,
		"an emergency rollback skips the approval gate, so only the owner team of the stage's fabrics may ask for one; without --emergency the stage's approvals decide")
}

// ClearHold checks that actor may clear the hold a rollback put on a stage:
// a member of the owner team of every fabric of the stage.
func ClearHold(stage string, owners []Owner, actor string) error {
	return stageOwner("clear the hold of", stage, owners, actor, "only the owner team of the stage's fabrics clears its hold")
}

func stageOwner(action, stage string, owners []Owner, actor, why string) error {
	target := "stage " + stage
	if actor == "" {
		return &Denied{Action: action, Target: target, Reason: noActor}
	}
	for _, o := range owners {
		if !slices.Contains(o.Members, actor) {
			return &Denied{Actor: actor, Action: action, Target: target,
				Reason: fmt.Sprintf("fabric %s is owned by team %s (%s); %s", o.Fabric, o.Team, list(o.Members), why)}
		}
	}
	return nil
}
