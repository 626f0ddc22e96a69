// Package access holds Shipline's access rules, in one place. Every function is
// pure (no I/O, no clock), so workflows call them directly with data that
// activities read from platform.yaml, and a refusal is decided deterministically.
//
// Rules: release / delete release / settings → project admins. Deploy to a
// fabric → members of its owner team. Approve a stage → members of its approval
// team, not the requester when self-approval is off.
//
// A workflow ends a refusal as a non-retryable application error of type
// apperr.AccessDenied.
package access

import (
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
		return &Denied{Action: action, Target: target, Reason: "no actor was named; pass --as USER or set SHIPLINE_USER"}
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
		return &Denied{Action: "deploy to", Target: "fabric " + fabric, Reason: "no actor was named; pass --as USER or set SHIPLINE_USER"}
	}
	if slices.Contains(members, actor) {
		return nil
	}
	return &Denied{Actor: actor, Action: "deploy to", Target: "fabric " + fabric,
		Reason: fmt.Sprintf("fabric %s is owned by team %s (%s); ask one of them to deploy", fabric, ownerTeam, list(members))}
}

func list(names []string) string {
	if len(names) == 0 {
		return "nobody"
	}
	return strings.Join(names, ", ")
}
