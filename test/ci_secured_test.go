package test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// Every example workflow can reach a secured, encrypting Temporal: the
// payload keys come from a secret into the job's environment, and a private
// server CA given as a secret is written to a file whose path the
// following steps get as TEMPORAL_TLS_SERVER_CA_CERT_PATH (and nothing is
// set when the secret is not).
func TestCIExamplesReachSecuredTemporal(t *testing.T) {
	for _, name := range []string{"check.yml", "release.yml", "promote.yml"} {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(ciExamples, name))
			if err != nil {
				t.Fatal(err)
			}
			var wf ghWorkflow
			if err := yaml.Unmarshal(data, &wf); err != nil {
				t.Fatal(err)
			}
			if got := wf.Env["SHIPLINE_CODEC_KEYS"]; got != "${{ secrets.SHIPLINE_CODEC_KEYS }}" {
				t.Errorf("env SHIPLINE_CODEC_KEYS = %q, want it from secrets.SHIPLINE_CODEC_KEYS", got)
			}
			var tlsStep *ghStep
			for _, j := range wf.Jobs {
				for i, st := range j.Steps {
					if st.Env["SERVER_CA"] != "" {
						tlsStep = &j.Steps[i]
					}
				}
			}
			if tlsStep == nil {
				t.Fatal("no step takes the server CA from a secret (env SERVER_CA)")
			}
			for _, tc := range []struct {
				ca   string
				want bool
			}{{"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----", true}, {"", false}} {
				base := t.TempDir()
				r := &ghRunner{t: t, workspace: filepath.Join(base, "work"), temp: filepath.Join(base, "temp"), home: filepath.Join(base, "home"),
					secrets: map[string]string{"TEMPORAL_TLS_SERVER_CA_CERT": tc.ca}, vars: map[string]string{}, github: map[string]string{}, inputs: map[string]string{}}
				for _, d := range []string{r.workspace, r.temp, r.home} {
					mkdirs(t, d)
				}
				envFile := filepath.Join(r.temp, "github_env")
				if err := os.WriteFile(envFile, nil, 0o644); err != nil {
					t.Fatal(err)
				}
				if out, err := r.step(*tlsStep, map[string]string{}, nil, map[string]string{"GITHUB_ENV": envFile}); err != nil {
					t.Fatalf("step %q: %v\n%s", tlsStep.title(), err, out)
				}
				lines := readLines(t, envFile)
				var caPath string
				for _, l := range lines {
					if v, ok := strings.CutPrefix(l, "TEMPORAL_TLS_SERVER_CA_CERT_PATH="); ok {
						caPath = v
					}
				}
				if !tc.want {
					if len(lines) > 0 {
						t.Errorf("without the secrets the step sets %v", lines)
					}
					continue
				}
				if got, err := os.ReadFile(caPath); err != nil || strings.TrimSpace(string(got)) != tc.ca {
					t.Errorf("TEMPORAL_TLS_SERVER_CA_CERT_PATH=%q holds %q (%v), want the secret's PEM", caPath, got, err)
				}
			}
		})
	}
}
