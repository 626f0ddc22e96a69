package test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// browser is headless Chromium (Debian's package) driven by chromedp for the
// dashboard's tests; any JavaScript dialog that opens is counted (a script
// that ran in a page).
type browser struct {
	t       *testing.T
	ctx     context.Context
	shots   string
	dialogs atomic.Int32
	opened  chan string
}

// newBrowser starts Chromium, or skips the test when it is not installed.
// Screenshots go to $SHIPLINE_SCREENSHOTS, else test/out/screenshots, under
// prefix.
func newBrowser(t *testing.T, prefix string) *browser {
	t.Helper()
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium is not installed (Debian package chromium; .ci/run installs it)")
	}
	shots := os.Getenv("SHIPLINE_SCREENSHOTS")
	if shots == "" {
		shots = filepath.Join("out", "screenshots")
	}
	shots = filepath.Join(shots, prefix)
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	if abs, err := filepath.Abs(shots); err == nil {
		shots = abs
	}
	t.Logf("screenshots go to %s", shots)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(1400, 1000))...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(cancel)
	ctx, cancelTimeout := context.WithTimeout(ctx, 10*time.Minute)
	t.Cleanup(cancelTimeout)
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start the browser: %v", err)
	}
	b := &browser{t: t, ctx: ctx, shots: shots, opened: make(chan string, 16)}
	go func() {
		for ev, err := range chromedp.Events(ctx, page.JavascriptDialogOpening) {
			if err != nil {
				return
			}
			b.dialogs.Add(1)
			select {
			case b.opened <- fmt.Sprintf("%s dialog %q", ev.Type, ev.Message):
			default:
			}
			_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
		}
	}()
	return b
}

// do runs steps; a step that fails (or hangs past its failsafe) fails the test,
// showing the page.
func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	sctx, scancel := context.WithTimeout(b.ctx, 3*time.Minute)
	defer scancel()
	if err := chromedp.Do(sctx, steps...); err != nil {
		page, err2 := chromedp.Run(b.ctx, chromedp.Evaluate[string](`location.href + "\n" + document.body.innerText`))
		if err2 != nil {
			page = err2.Error()
		}
		b.t.Fatalf("%s: %v; the page:\n%s", what, err, page)
	}
}

// text is the visible text of the first element matching sel.
func (b *browser) text(sel string) string {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q) || {innerText: %q}).innerText`, sel, "(no "+sel+")")))
	if err != nil {
		b.t.Fatalf("text of %s: %v", sel, err)
	}
	return v
}

// count evaluates an expression giving a number.
func (b *browser) count(expr string) int {
	b.t.Helper()
	n, err := chromedp.Run(b.ctx, chromedp.Evaluate[int](expr))
	if err != nil {
		b.t.Fatalf("%s: %v", expr, err)
	}
	return n
}

// shot saves a full-page screenshot as name.png.
func (b *browser) shot(name string) {
	b.t.Helper()
	buf, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(b.shots, name+".png"), buf, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// asUser makes every request carry the proxy's user header (none for "").
func (b *browser) asUser(user string) {
	b.t.Helper()
	if _, err := chromedp.Call(b.ctx, network.Enable, network.EnableParams{}); err != nil {
		b.t.Fatal(err)
	}
	h := network.Headers{}
	if user != "" {
		h["X-Forwarded-User"] = user
	}
	if _, err := chromedp.Call(b.ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: h}); err != nil {
		b.t.Fatal(err)
	}
}

// noDialogs fails the test when a script opened a dialog.
func (b *browser) noDialogs() {
	b.t.Helper()
	if n := b.dialogs.Load(); n != 0 {
		b.t.Errorf("%d dialogs opened: a script ran in the page (first: %s)", n, <-b.opened)
	}
}
