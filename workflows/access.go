package workflows

import (
	"github.com/shipline/shipline/activities"
	"github.com/shipline/shipline/internal/access"
)

// The access rules live in internal/access; these turn the workflows' data
// into their arguments.

// fabricOwners returns the owner teams of a deployment's fabrics.
func fabricOwners(fabrics []activities.FabricInfo) []access.Owner {
	out := make([]access.Owner, 0, len(fabrics))
	for _, f := range fabrics {
		out = append(out, access.Owner{Fabric: f.Name, Team: f.Owner, Members: f.Members})
	}
	return out
}

// stageOwners returns the owner teams of a stage's fabrics, in the stage's order.
func stageOwners(st activities.StageSettings) []access.Owner {
	out := make([]access.Owner, 0, len(st.Fabrics))
	for _, f := range st.Fabrics {
		o := st.Owners[f]
		out = append(out, access.Owner{Fabric: f, Team: o.Owner, Members: o.Members})
	}
	return out
}

// approval returns the gate of stage i of a promotion.
func (p *promotion) approval(i int) access.Gate {
	s := p.state.Stages[i]
	st := p.settings.Stages[i]
	return access.Gate{Stage: s.Name, Team: s.Team, Members: st.Members, SelfApproval: s.SelfApproval, Services: st.Services}
}
