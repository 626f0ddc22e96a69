package activities

import (
	"context"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/window"
)

// WindowInput asks whether stages are open at At (workflow time): the stages
// named, and the stages the fabrics belong to.
type WindowInput struct {
	Stages  []string  `json:"stages,omitempty"`
	Fabrics []string  `json:"fabrics,omitempty"`
	At      time.Time `json:"at"`
}

// StageWindow is one stage's change window at At.
type StageWindow struct {
	Stage string `json:"stage"`
	// Owners are the owner teams of every fabric of the stage, in its order
	// (who may override a closed window).
	Owners []FabricInfo `json:"owners"`
	// Rules: the stage (or the platform, for it) defines windows or freezes.
	Rules bool `json:"rules"`
	Open  bool `json:"open"`
	// Until is when a closed stage opens (zero: not within window.Horizon).
	Until time.Time `json:"until,omitempty"`
	// Reason says why it is closed; Message is the sentence people read:
	// "closed until Mon 08:00 Europe/Berlin: year-end freeze".
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
}

// WindowOutput lists the stages asked about, in promotion order.
type WindowOutput struct {
	Stages []StageWindow `json:"stages"`
}

// Window reads platform.yaml's windows as the worker has them now (so a
// changed file counts from the next check) and says, for each stage asked
// about, whether it is open at in.At and until when it is closed. A Config
// without a platform (workflow tests that do not mock it) has no windows.
func (c *Config) Window(_ context.Context, in WindowInput) (WindowOutput, error) {
	out := WindowOutput{Stages: []StageWindow{}}
	if c.Platform == nil {
		return out, nil
	}
	for _, st := range c.Platform.Promotion.Stages {
		wanted := slices.Contains(in.Stages, st.Name)
		for _, f := range st.Fabrics {
			wanted = wanted || slices.Contains(in.Fabrics, f)
		}
		if !wanted {
			continue
		}
		w := StageWindow{Stage: st.Name, Open: true}
		for _, f := range st.Fabrics {
			fab := c.Platform.Fabrics[f]
			w.Owners = append(w.Owners, FabricInfo{Name: f, Kind: string(fab.Kind), Owner: fab.Owner, Members: slices.Clone(c.Platform.Teams[fab.Owner].Members)})
		}
		sched := window.For(st.Name, st.Windows, c.Platform.Windows)
		if !sched.Empty() {
			w.Rules = true
			status, err := sched.At(in.At)
			if err != nil {
				return out, temporal.NewNonRetryableApplicationError("the change windows of stage "+st.Name+": "+err.Error(), apperr.InvalidInput, nil)
			}
			w.Open, w.Until = status.Open, status.Until
			if !status.Open {
				w.Reason = strings.Join(status.Reasons, "; then ")
				w.Message = status.Message(in.At)
			}
		}
		out.Stages = append(out.Stages, w)
	}
	return out, nil
}
