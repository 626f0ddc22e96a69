package activities

import (
	"context"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"sort"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/platform"
	"github.com/shipline/shipline/internal/signing"
)

// Config answers questions about platform.yaml for workflows. The file is read by
// the worker at start; workflows get the non-secret facts they decide on through
// these activities, so every decision is recorded in history.
type Config struct {
	Platform *platform.Config
}

// ProjectInput names a project.
type ProjectInput struct {
	Project string `json:"project"`
}

// ProjectSettings are the non-secret settings of a project that workflows decide on.
type ProjectSettings struct {
	Name string `json:"name"`
	// Remote is the repository URL without credentials, for messages.
	Remote        string   `json:"remote"`
	Admins        []string `json:"admins"`
	AutoDeploy    bool     `json:"auto_deploy"`
	SelectiveJobs bool     `json:"selective_jobs"`
	// GitRetry bounds how long git steps retry an unreachable remote before parking.
	GitRetry time.Duration `json:"git_retry,omitempty"`
	// Notify are the notification targets of the project's events (nil: none).
	Notify *NotifySettings `json:"notify,omitempty"`
}

// Project returns a project's settings; an unregistered project is a permanent
// apperr.UnknownProject failure listing the registered ones.
func (c *Config) Project(_ context.Context, in ProjectInput) (ProjectSettings, error) {
	p, ok := c.Platform.Projects[in.Project]
	if !ok {
		return ProjectSettings{}, unknownProject(c.Platform, in.Project)
	}
	return ProjectSettings{
		Name:          in.Project,
		Remote:        RedactURL(p.Repo),
		Admins:        slices.Clone(p.Admins),
		AutoDeploy:    p.AutoDeploy,
		SelectiveJobs: p.SelectiveJobs,
		GitRetry:      p.GitRetry,
		Notify:        notifySettings(c.Platform, in.Project),
	}, nil
}

func unknownProject(cfg *platform.Config, name string) error {
	known := make([]string, 0, len(cfg.Projects))
	for k := range cfg.Projects {
		known = append(known, k)
	}
	sort.Strings(known)
	msg := fmt.Sprintf("project %q is not registered in %s (registered: %v); ask a platform admin to add it under projects:", name, platformFile(cfg), known)
	return temporal.NewNonRetryableApplicationError(msg, apperr.UnknownProject, nil)
}

func platformFile(cfg *platform.Config) string {
	if cfg.Path != "" {
		return cfg.Path
	}
	return "platform.yaml"
}

// RedactURL drops user info (tokens) from a URL for messages and logs.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	u.User = nil
	return u.String()
}

// StageSettings is one promotion stage with the facts a workflow decides on.
type StageSettings struct {
	Name    string   `json:"name"`
	Fabrics []string `json:"fabrics"`
	// Approval gate; Team empty means no gate.
	Team    string   `json:"team,omitempty"`
	Members []string `json:"members,omitempty"` // of Team
	// Services are the members of Team that are service identities: they never vote.
	Services     []string      `json:"services,omitempty"`
	Required     int           `json:"required,omitempty"`
	SelfApproval bool          `json:"self_approval"`
	Timeout      time.Duration `json:"timeout,omitempty"`
	Soak         time.Duration `json:"soak,omitempty"`
	// Verify is the stage's verification (nil: a deployment is verified).
	Verify *platform.Verify `json:"verify,omitempty"`
	// Auto continues a promotion into the stage once the previous one is verified.
	Auto bool `json:"auto,omitempty"`
	// OnFailure is platform.OnFailureRollback to roll back a failed verification.
	OnFailure string `json:"on_failure,omitempty"`
	// Owners maps each stage fabric to its owner team and that team's members.
	Owners map[string]FabricInfo `json:"owners"`
}

// PromotionSettings lists the stages of promotion.stages in order.
type PromotionSettings struct {
	Stages []StageSettings `json:"stages"`
	// Notify are the notification targets of the project's events (nil: none).
	Notify *NotifySettings `json:"notify,omitempty"`
}

// Promotion returns promotion.stages with teams resolved to members. A platform
// without stages is a permanent error saying what to add.
func (c *Config) Promotion(_ context.Context, in ProjectInput) (PromotionSettings, error) {
	if _, ok := c.Platform.Projects[in.Project]; !ok {
		return PromotionSettings{}, unknownProject(c.Platform, in.Project)
	}
	if len(c.Platform.Promotion.Stages) == 0 {
		return PromotionSettings{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("%s defines no promotion stages; add promotion.stages (e.g. dev → qa → prod) to promote releases", platformFile(c.Platform)), apperr.InvalidInput, nil)
	}
	var out PromotionSettings
	for _, st := range c.Platform.Promotion.Stages {
		s := StageSettings{Name: st.Name, Fabrics: slices.Clone(st.Fabrics), Soak: st.Soak, Auto: st.Auto, OnFailure: st.OnFailure, Owners: map[string]FabricInfo{}}
		if v := st.Verify; v != nil {
			s.Verify = &platform.Verify{Jobs: slices.Clone(v.Jobs), Params: maps.Clone(v.Params), Timeout: v.Timeout}
		}
		if a := st.Approval; a != nil {
			s.Team, s.Required, s.SelfApproval, s.Timeout = a.Team, a.Required, a.SelfApproval, a.Timeout
			s.Members = slices.Clone(c.Platform.Teams[a.Team].Members)
			s.Services = c.Platform.Services(a.Team)
		}
		for _, f := range st.Fabrics {
			fab := c.Platform.Fabrics[f]
			s.Owners[f] = FabricInfo{Name: f, Kind: string(fab.Kind), Owner: fab.Owner, Members: slices.Clone(c.Platform.Teams[fab.Owner].Members)}
		}
		out.Stages = append(out.Stages, s)
	}
	out.Notify = notifySettings(c.Platform, in.Project)
	return out, nil
}

// Signatures returns platform.yaml's signing policy: whether signatures are
// required and each user's public keys (public, not secret).
func (c *Config) Signatures(_ context.Context) (signing.Policy, error) {
	p := signing.Policy{Require: c.Platform.RequireSignatures, Keys: map[string][]string{}}
	for name, u := range c.Platform.Users {
		p.Keys[name] = slices.Clone(u.Keys)
	}
	for name, d := range c.Platform.Delegates {
		if p.Delegates == nil {
			p.Delegates = map[string][]string{}
		}
		p.Delegates[name] = slices.Clone(d.Keys)
	}
	return p, nil
}
