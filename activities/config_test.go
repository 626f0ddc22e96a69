package activities

import (
	"context"
	"slices"
	"testing"

	"github.com/shipline/shipline/internal/platform"
)

// The promotion settings name the service identities of each gate's team, so
// the workflow refuses their votes.
func TestPromotionNamesServiceIdentities(t *testing.T) {
	c := &Config{Platform: &platform.Config{
		Teams:    map[string]platform.Team{"developers": {Members: []string{"alice", "ci", "bob"}}, "prod_support": {Members: []string{"carol"}}},
		Projects: map[string]platform.Project{"demo": {Name: "demo"}},
		Fabrics:  map[string]platform.Fabric{"qa": {Name: "qa", Owner: "developers"}, "prod": {Name: "prod", Owner: "prod_support"}},
		Promotion: platform.Promotion{Stages: []platform.Stage{
			{Name: "qa", Fabrics: []string{"qa"}, Approval: &platform.Approval{Team: "developers", Required: 1}},
			{Name: "prod", Fabrics: []string{"prod"}, Approval: &platform.Approval{Team: "prod_support", Required: 1}},
		}},
		Users: map[string]platform.User{"ci": {Service: true}, "alice": {}},
	}}
	got, err := c.Promotion(context.Background(), ProjectInput{Project: "demo"})
	if err != nil {
		t.Fatal(err)
	}
	if s := got.Stages[0].Services; !slices.Equal(s, []string{"ci"}) {
		t.Errorf("qa services = %v, want [ci]", s)
	}
	if s := got.Stages[1].Services; len(s) != 0 {
		t.Errorf("prod services = %v, want none", s)
	}
}
