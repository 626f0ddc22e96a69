package cli

import (
	"strings"
	"testing"

	"github.com/shipline/shipline/workflows"
)

// A CLI without payload keys facing a worker that encrypts payloads sends
// nothing (exit 2, naming the variable to set): its plain-text input (a
// release message, job definitions) would otherwise be written to history.
// With the keys set, the same command goes through.
func TestNoKeysAgainstEncryptingWorkerSendsNothing(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"release", []string{"release", "v1.0.0", "--project", "demo", "--no-deploy", "--message", "confidential"}},
		{"approve", []string{"approve", "v1.0.0", "--project", "demo", "--stage", "qa"}},
		{"status", []string{"status", "release/demo/v1.0.0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("SHIPLINE_CODEC_KEYS", "")
			f := newFake()
			f.encrypting = true
			code, out, errOut := shipline(t, f, tc.args...)
			if code != ExitInvalid {
				t.Errorf("exit %d, want %d\n%s\n%s", code, ExitInvalid, out, errOut)
			}
			want := `the worker on task queue "shipline" (namespace default) encrypts payloads (temporal.encryption in its platform.yaml), and SHIPLINE_CODEC_KEYS is not set`
			if !strings.Contains(errOut, want) || !strings.Contains(errOut, "nothing was sent") {
				t.Errorf("the refusal does not say what to set:\n%s", errOut)
			}
			if len(f.calls) > 0 {
				t.Errorf("calls were sent: %v", f.calls)
			}
		})
	}

	t.Run("with keys", func(t *testing.T) {
		t.Setenv("SHIPLINE_CODEC_KEYS", "k1:"+strings.Repeat("A", 43)+"=")
		f := newFake()
		f.encrypting = true
		f.onStart[workflows.ReleaseWorkflow] = &fakeWF{typ: workflows.ReleaseWorkflow, accept: workflows.Acceptance{Accepted: true, Status: workflows.StatusRunning}}
		code, out, errOut := shipline(t, f, "release", "v1.0.0", "--project", "demo", "--no-deploy")
		if code != ExitOK || len(f.calls) == 0 {
			t.Errorf("exit %d, calls %v\n%s\n%s", code, f.calls, out, errOut)
		}
	})
}

// check without --platform does not send the job definitions to a worker
// that encrypts payloads when it has no keys: its render step fails saying
// what to set, and nothing reaches Temporal.
func TestCheckNoKeysAgainstEncryptingWorker(t *testing.T) {
	skipWithoutPythonBuild(t)
	t.Setenv("SHIPLINE_CODEC_KEYS", "")
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	fix := newCheckFixture(t, "local-dev", "", nil)
	f := newFake()
	f.encrypting = true
	code, out, errOut := shipline(t, f, "check", fix.proj)
	if code != ExitFailed || !strings.Contains(out, `render:   failed: the worker on task queue "shipline" (namespace default) encrypts payloads`) {
		t.Errorf("exit %d; the render step does not refuse:\n%s\n%s", code, out, errOut)
	}
	if len(f.calls) > 0 {
		t.Errorf("calls were sent: %v", f.calls)
	}
}
