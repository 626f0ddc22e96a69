package cli

import (
	"encoding/json"
	"testing"
)

// logs sends its read to the entity of the deployment's project: named by the
// state, else by the deployment ID.
func TestDeploymentProject(t *testing.T) {
	for _, c := range []struct {
		id, state, want string
	}{
		{"deploy/demo/v1.0.0/release", `{"project":"sales"}`, "sales"},
		{"deploy/demo/v1.0.0/release", `{"status":"parked"}`, "demo"},
		{"deploy/demo/v1.0.0/release", `not json`, "demo"},
		{"elsewhere/x", `{}`, ""},
	} {
		if got := deploymentProject(c.id, json.RawMessage(c.state)); got != c.want {
			t.Errorf("deploymentProject(%q, %s) = %q, want %q", c.id, c.state, got, c.want)
		}
	}
}
