package apperr

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"
)

// declaredTypes reads the type-name constants of types.go: every untyped
// string constant (the Class constants are typed).
func declaredTypes(t *testing.T) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "types.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			v := s.(*ast.ValueSpec)
			if v.Type != nil {
				continue
			}
			for i, name := range v.Names {
				lit, ok := v.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					continue
				}
				out[name.Name], _ = strconv.Unquote(lit.Value)
			}
		}
	}
	return out
}

func TestEveryTypeHasAClass(t *testing.T) {
	declared := declaredTypes(t)
	if len(declared) < 30 {
		t.Fatalf("read only %d type names from types.go", len(declared))
	}
	for name, value := range declared {
		if !Known(value) {
			t.Errorf("type %s (%q) has no class in the classes table", name, value)
		}
	}
	for _, typ := range Types() {
		found := false
		for _, v := range declared {
			found = found || v == typ
		}
		if !found {
			t.Errorf("classes holds %q, which is no declared type name", typ)
		}
	}
}

// The values are what histories, the audit and scripts hold: each stays as it
// was, and each has the class the workflows act on.
func TestClassOfEachType(t *testing.T) {
	cases := []struct {
		typ   string
		value string
		class Class
	}{
		{AccessDenied, "AccessDenied", Refused},
		{SignatureRefused, "SignatureRefused", Refused},
		{CarriedStateRefused, "CarriedStateRefused", Refused},
		{InvalidInput, "InvalidInput", Refused},
		{InvalidManifest, "InvalidManifest", Refused},
		{UnknownProject, "UnknownProject", Refused},
		{UnknownRelease, "UnknownRelease", Refused},
		{UnknownJob, "UnknownJob", Refused},
		{SelectiveJobsDisabled, "SelectiveJobsDisabled", Refused},
		{FabricMismatch, "FabricMismatch", Refused},
		{NotReleased, "NotReleased", Refused},
		{NoDeployer, "NoDeployer", Refused},
		{NotAdopted, "NotAdopted", Refused},
		{UpdateRefused, "UpdateRefused", Refused},
		{ArtifactMismatch, "ArtifactMismatch", Refused},
		{InvalidName, "InvalidName", Refused},
		{ActiveRun, "ActiveRun", Refused},
		{UnknownRef, "UnknownRef", Fails},
		{TagConflict, "TagConflict", Fails},
		{TestsFailed, "TestsFailed", Fails},
		{BuildFailed, "BuildFailed", Fails},
		{ArtifactNotFound, "ArtifactNotFound", Fails},
		{ArtifactAmbiguous, "ArtifactAmbiguous", Fails},
		{InvalidDefinition, "InvalidDefinition", Fails},
		{NotDeployed, "NotDeployed", Refused},
		{RunsUnsupported, "RunsUnsupported", Refused},
		{RunFailed, "RunFailed", Fails},
		{VerificationFailed, "VerificationFailed", Fails},
		{GitAuthFailed, "GitAuthFailed", Parks},
		{BuildToolMissing, "BuildToolMissing", Parks},
		{PythonUnavailable, "PythonUnavailable", Parks},
		{FabricConfig, "FabricConfig", Parks},
		{FabricAuth, "FabricAuth", Parks},
		{FabricRejected, "FabricRejected", Parks},
		{ArtifactConflict, "ArtifactConflict", Parks},
		{ArtifactMissing, "ArtifactMissing", Parks},
		{ArtifactCorrupt, "ArtifactCorrupt", Parks},
		{DuplicateJobs, "DuplicateJobs", Parks},
		{UnsafePath, "UnsafePath", Parks},
		{FabricUnavailable, "FabricUnavailable", Parks},
		{DagNotParsed, "DagNotParsed", Parks},
		{DagIDOwned, "DagIDOwned", Parks},
		{ActiveRunTimeout, "ActiveRunTimeout", Parks},
		{VersionAlreadyPublished, "VersionAlreadyPublished", Fails},
		{DependencyNotPublished, "DependencyNotPublished", Refused},
		{IndexConfig, "IndexConfig", Parks},
		{IndexAuth, "IndexAuth", Parks},
		{IndexRejected, "IndexRejected", Parks},
		{IndexUnavailable, "IndexUnavailable", Parks},
		{NotificationConfig, "NotificationConfig", Parks},
		{NotificationRefused, "NotificationRefused", Parks},
		{NotificationUnavailable, "NotificationUnavailable", Parks},
		{Cancelled, "Cancelled", Stopped},
		{Superseded, "Superseded", Stopped},
		{PlanChanged, "PlanChanged", Refused},
		// Failures without a Shipline type: a transient problem that outlasted its retries.
		{"", "", Parks},
		{"PanicError", "PanicError", Parks},
	}
	if len(cases) != len(Types())+2 {
		t.Errorf("the table covers %d types, the package declares %d", len(cases)-2, len(Types()))
	}
	for _, c := range cases {
		if c.typ != c.value {
			t.Errorf("type %q changed its value to %q", c.value, c.typ)
		}
		if got := ClassOf(c.typ); got != c.class {
			t.Errorf("ClassOf(%q) = %s, want %s", c.typ, got, c.class)
		}
	}
	for _, typ := range []string{FabricUnavailable, DagNotParsed, IndexUnavailable} {
		if !Transient(typ) {
			t.Errorf("%s is not transient", typ)
		}
	}
	if Transient(FabricAuth) || Transient("") {
		t.Error("a permanent type is transient")
	}
}

func TestClassifyReadsWrappedFailures(t *testing.T) {
	app := temporal.NewNonRetryableApplicationError("no", AccessDenied, nil)
	if got := Classify(fmt.Errorf("activity error: %w", app)); got != Refused {
		t.Errorf("Classify(wrapped application error) = %s", got)
	}
	e := &Error{Type: TestsFailed, Msg: "tests failed"}
	if got := Classify(fmt.Errorf("build: %w", e)); got != Fails {
		t.Errorf("Classify(wrapped *Error) = %s", got)
	}
	if got := Classify(errors.New("connection reset")); got != Parks {
		t.Errorf("Classify(plain error) = %s", got)
	}
	if !IsType(fmt.Errorf("x: %w", e), TestsFailed) || IsType(e, BuildFailed) || IsType(nil, "") {
		t.Error("IsType")
	}
}

func TestSentinelMatchesByType(t *testing.T) {
	sentinel := Sentinel(TagConflict)
	err := fmt.Errorf("push: %w", &Error{Type: TagConflict, Msg: "tag v1 is on another commit"})
	if !errors.Is(err, sentinel) {
		t.Error("errors.Is does not match the sentinel of the same type")
	}
	if errors.Is(err, Sentinel(UnknownRef)) {
		t.Error("errors.Is matches the sentinel of another type")
	}
}

type detail struct{ Log string }

func TestForTemporal(t *testing.T) {
	secret := errors.New("GET https://user:hunter2@host/repo: 401")
	err := fmt.Errorf("upload to fabric dev: %w", &Error{Type: FabricAuth, Msg: "fabric dev refused the token", Cause: secret, Details: []any{detail{"log"}}})
	var app *temporal.ApplicationError
	if !errors.As(ForTemporal(err), &app) {
		t.Fatalf("ForTemporal(*Error) = %T", ForTemporal(err))
	}
	if app.Type() != FabricAuth || !app.NonRetryable() || app.Message() != "upload to fabric dev: fabric dev refused the token" {
		t.Errorf("application error = type %s, non-retryable %v, message %q", app.Type(), app.NonRetryable(), app.Message())
	}
	if app.Unwrap() != nil {
		t.Errorf("the cause travels with the failure: %v", app.Unwrap())
	}
	var d detail
	if err := app.Details(&d); err != nil || d.Log != "log" {
		t.Errorf("details = %+v, %v", d, err)
	}

	if !errors.As(ForTemporal(&Error{Type: FabricUnavailable, Msg: "503"}), &app) || app.NonRetryable() || app.Type() != FabricUnavailable {
		t.Errorf("a transient type is not retried: %v", app)
	}
	plain := errors.New("connection reset")
	if ForTemporal(plain) != plain || ForTemporal(nil) != nil {
		t.Error("ForTemporal changed an error without a type")
	}
	already := temporal.NewNonRetryableApplicationError("x", InvalidInput, nil)
	if ForTemporal(already) != already {
		t.Error("ForTemporal changed an application error")
	}
}

// TestOneVocabulary keeps the type names in this package: outside it, no Go
// file (tests included) spells a type name as a string literal or declares its
// own constant for one.
func TestOneVocabulary(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	self, _ := filepath.Abs(".")
	known := map[string]bool{}
	for _, typ := range Types() {
		known[typ] = true
	}
	var problems []string
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path == self || strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			if v, err := strconv.Unquote(lit.Value); err == nil && known[v] {
				rel, _ := filepath.Rel(root, fset.Position(lit.Pos()).Filename)
				problems = append(problems, fmt.Sprintf("%s:%d: %q: use apperr.%s", rel, fset.Position(lit.Pos()).Line, v, v))
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) > 0 {
		t.Errorf("type names spelled outside internal/apperr:\n%s", strings.Join(problems, "\n"))
	}
}
