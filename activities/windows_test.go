package activities

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/shipline/shipline/internal/platform"
)

func TestWindow(t *testing.T) {
	cfg, diags := platform.Parse("platform.yaml", []byte(`
teams:
  developers: {members: [alice]}
  prod_support: {members: [carol]}
projects:
  demo: {repo: file:///srv/git/demo.git, admins: [alice]}
fabrics:
  dev: {kind: local, owner: developers, root: dev}
  prod: {kind: local, owner: prod_support, root: prod}
  sandbox: {kind: local, owner: developers, root: sandbox}
promotion:
  stages:
    - {name: dev, fabrics: [dev]}
    - name: prod
      fabrics: [prod]
      windows: {open: [{days: [mon-fri], hours: "08:00-17:00", timezone: Europe/Berlin}]}
windows:
  freezes: [{from: "2026-11-28 00:00", to: "2026-11-29 00:00", reason: platform upgrade, stages: [dev]}]
`), "/etc/shipline")
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	c := &Config{Platform: cfg}
	saturday := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	out, err := c.Window(context.Background(), WindowInput{Fabrics: []string{"prod", "sandbox"}, Stages: []string{"dev"}, At: saturday})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Stages) != 2 || out.Stages[0].Stage != "dev" || out.Stages[1].Stage != "prod" {
		t.Fatalf("stages = %+v (sandbox is in no stage)", out.Stages)
	}
	dev, prod := out.Stages[0], out.Stages[1]
	if dev.Open || !dev.Rules || dev.Message != "closed until Sun 00:00 UTC: platform upgrade" || !dev.Until.Equal(time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("dev = %+v", dev)
	}
	if prod.Open || !strings.HasPrefix(prod.Message, "closed until Mon 08:00 Europe/Berlin: outside the change windows of stage prod") ||
		len(prod.Owners) != 1 || prod.Owners[0].Owner != "prod_support" || prod.Owners[0].Members[0] != "carol" {
		t.Errorf("prod = %+v", prod)
	}
	monday := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	out, _ = c.Window(context.Background(), WindowInput{Stages: []string{"dev", "prod"}, At: monday})
	if !out.Stages[0].Open || !out.Stages[1].Open || out.Stages[1].Message != "" {
		t.Errorf("monday = %+v", out.Stages)
	}
	if out, _ := (&Config{}).Window(context.Background(), WindowInput{Stages: []string{"prod"}, At: monday}); len(out.Stages) != 0 {
		t.Errorf("no platform: %+v", out)
	}
}
