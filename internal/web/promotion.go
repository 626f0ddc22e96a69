package web

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.uber.org/zap"

	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/signing"
	"github.com/shipline/shipline/internal/version"
	"github.com/shipline/shipline/internal/views"
	"github.com/shipline/shipline/workflows"
)

// promotionData is the promotion page: the promotion's state (its query),
// with each gate's plan — what the stage's deploy will change — and its hash,
// which an approval from the page names.
type promotionData struct {
	ID      string
	Version string
	State   *workflows.PromoteState
	// Closed says how the promotion ended when it is no longer running.
	Closed string
	// Notifications are the latest events the promotion sent and how each
	// target took them (read from their Notify workflows).
	Notifications []views.NoticeStatus
}

// pageNotices is how many of a promotion's latest notices its page shows
// (each is read from its Notify workflow at every refresh).
const pageNotices = 5

func (s *Server) promotionPage(w http.ResponseWriter, r *http.Request, v *visit) {
	ver := r.PathValue("version")
	d, status, err := s.promotion(r.Context(), v.Project, ver)
	if err != nil {
		s.renderStatus(w, r, status, "promotion", v, d, func(p *page) { p.Error = err.Error() })
		return
	}
	flash := s.votedFlash(r.URL.Query(), v, ver)
	s.render(w, r, "promotion", v, d, func(p *page) { p.Flash = flash })
}

// votedQuery is what the redirect after a vote carries to the promotion page
// for its message, with a MAC of this session and user: a link cannot make
// the page say "You approved prod" to someone who did not.
func (s *Server) votedQuery(v *visit, ver, update, stage string) string {
	return url.Values{"voted": {update}, "stage": {stage}, "m": {s.mac("voted", v.Session, v.User, v.Project, ver, update, stage)}}.Encode()
}

// votedFlash is the message about the vote just made ("" when the query
// names none, or was not made by votedQuery for this visit).
func (s *Server) votedFlash(q url.Values, v *visit, ver string) string {
	update, stage := q.Get("voted"), q.Get("stage")
	if want := s.mac("voted", v.Session, v.User, v.Project, ver, update, stage); q.Get("m") == "" || !hmac.Equal([]byte(q.Get("m")), []byte(want)) {
		return ""
	}
	switch update {
	case workflows.ApproveUpdate:
		return fmt.Sprintf("You approved %s: recorded as %s via %s.", stage, v.User, s.opts.Delegate)
	case workflows.RejectUpdate:
		return fmt.Sprintf("You rejected %s: recorded as %s via %s.", stage, v.User, s.opts.Delegate)
	}
	return ""
}

// promotion reads a promotion's state (and its stages' plans, when present).
func (s *Server) promotion(ctx context.Context, project, ver string) (*promotionData, int, error) {
	d := &promotionData{ID: workflows.PromoteID(project, ver), Version: ver}
	if !version.Valid(ver) {
		return d, http.StatusNotFound, fmt.Errorf("%q is not a version (v1.2.3)", ver)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var raw json.RawMessage
	closed, err := views.QueryState(ctx, s.opts.Client, d.ID, "", &raw)
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return d, http.StatusNotFound, fmt.Errorf("%s has not been promoted: `shipline promote %s --project %s` starts it", ver, ver, project)
	}
	if err != nil {
		return d, http.StatusBadGateway, fmt.Errorf("query %s: %w", d.ID, err)
	}
	if closed != nil {
		d.Closed = closed.Error()
	}
	var st workflows.PromoteState
	if err := json.Unmarshal(raw, &st); err != nil {
		return d, http.StatusBadGateway, fmt.Errorf("read the state of %s: %w", d.ID, err)
	}
	d.State = &st
	notices := st.Notices[max(0, len(st.Notices)-pageNotices):]
	d.Notifications = views.Notices(ctx, s.opts.Client, notices)
	slices.Reverse(d.Notifications) // newest first
	return d, http.StatusOK, nil
}

// vote approves or rejects the stage waiting at the gate, for the signed-in
// user, signed by the dashboard's delegate key: the workflow verifies the
// signature, applies the same rules as to a vote from the CLI, and records
// "carol via web".
func (s *Server) vote(w http.ResponseWriter, r *http.Request, v *visit) {
	ver := r.PathValue("version")
	update := r.PostFormValue("decision")
	stage := r.PostFormValue("stage")
	comment := r.PostFormValue("comment")
	if update != workflows.ApproveUpdate && update != workflows.RejectUpdate {
		http.Error(w, "decision must be approve or reject", http.StatusBadRequest)
		return
	}
	refuse := func(status int, err error) {
		d, _, _ := s.promotion(r.Context(), v.Project, ver)
		s.renderStatus(w, r, status, "promotion", v, d, func(p *page) { p.Error = err.Error() })
	}
	if update == workflows.RejectUpdate && comment == "" {
		refuse(http.StatusBadRequest, errors.New("a rejection needs a comment saying why"))
		return
	}
	if !version.Valid(ver) || stage == "" {
		http.Error(w, "bad version or stage", http.StatusBadRequest)
		return
	}
	id := workflows.PromoteID(v.Project, ver)
	vote := workflows.Vote{Stage: stage, Actor: v.User, Comment: comment}
	if update == workflows.ApproveUpdate {
		// The plan the user saw on the page, signed with the vote: if the gate
		// shows another plan by now, the workflow refuses and says what changed.
		vote.PlanHash = r.PostFormValue("plan_hash")
	}
	auth, err := s.sign(id, update, v.User, vote)
	if err != nil {
		refuse(http.StatusInternalServerError, err)
		return
	}
	vote.Auth = auth
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	var st workflows.StageState
	h, err := s.opts.Client.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: id, UpdateName: update, Args: []any{vote}, WaitForStage: client.WorkflowUpdateStageCompleted})
	if err == nil {
		err = h.Get(ctx, &st)
	}
	if err != nil {
		s.log.Info("dashboard vote refused", zap.String("user", v.User), zap.String("promotion", id), zap.String("stage", stage), zap.String("vote", update), zap.Error(err))
		refuse(http.StatusForbidden, fmt.Errorf("%s refused: %s", update, apperr.Message(err)))
		return
	}
	s.log.Info("dashboard vote", zap.String("user", v.User), zap.String("via", s.opts.Delegate), zap.String("promotion", id), zap.String("stage", stage), zap.String("vote", update))
	http.Redirect(w, r, fmt.Sprintf("/p/%s/promotions/%s?%s", url.PathEscape(v.Project), url.PathEscape(ver), s.votedQuery(v, ver, update, stage)), http.StatusSeeOther)
}

// sign signs a request on the user's behalf with the dashboard's delegate key.
func (s *Server) sign(workflowID, action, actor string, args any) (*signing.Auth, error) {
	canonical, err := signing.Canonical(workflows.SignedArgs(args))
	if err != nil {
		return nil, err
	}
	a := signing.Sign(s.opts.Key, signing.Request{WorkflowID: workflowID, Action: action, Actor: actor, Args: canonical,
		RequestID: uuid.NewString(), Time: time.Now().UTC(), Delegate: s.opts.Delegate})
	return &a, nil
}
