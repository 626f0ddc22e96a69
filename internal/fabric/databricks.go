package fabric

// The databricks fabric: artifacts go to a Unity Catalog volume (Files API),
// the workspace (workspace import) or DBFS, chosen by artifact_root; jobs are
// Jobs API 2.2 jobs found by Shipline's tags. Everything goes through
// databricks-sdk-go; job payloads are sent as raw JSON through the SDK's
// low-level client so fields newer than the SDK's structs are kept.
//
// Choices:
//   - Checksums: an artifact already at its path with the same size is
//     downloaded and hashed (no sidecar .sha256 file: a sidecar is written
//     separately from the file, can be stale, and other tools do not keep it).
//     Downloads only happen on re-deploys of an existing version.
//   - Writes never overwrite: Files API PUT with overwrite=false, workspace
//     import without overwrite, DBFS put without overwrite or, above 1 MB, a
//     temporary file moved into place, so a half-written file never sits at
//     an immutable path. "Already exists" after a lost answer is re-checked.
//   - Exactly once, also when an answer is lost. Any call may act on the
//     server and still fail for its caller (a 5xx, a 429 or a connection
//     dropped after the server handled it), and databricks-sdk-go resends
//     a call answered 429 or 503 or whose connection was reset. That is
//     harmless for idempotent calls (reads, mkdirs, jobs/reset) and for the
//     create-only writes above (a resend is refused as "already exists").
//     The calls a resend would repeat — jobs/create (a second job) and DBFS
//     create, add-block, close and move (a block appended twice) — are sent
//     once, outside the SDK's retry loop (sendOnce). Before a create is sent
//     again the job is looked up by its tags (createJob); after any failed
//     artifact write the path is checked again before anything is resent.
//   - Jobs: the identity is the tag pair shipline_project + shipline_job. The
//     list is filtered by the payload's name first; when no tagged job has
//     that name, every job is listed (a renamed job is still found). A job
//     whose live settings already hold everything Shipline sends (server
//     defaults ignored) is left unchanged; otherwise it is reset, which
//     replaces all its settings. access_control_list only applies on create.
//   - "recreated" cannot be told from "created" here (the fabric keeps no
//     state); the caller, which remembers the job ID it deployed, maps
//     created → recreated.
//   - The token is read from token_env on every request, so fixing the
//     variable and resuming works without restarting the worker. The SDK
//     retries 429/503 itself for at most retryTimeout; after that the error
//     is returned as transient and Temporal retries the activity.

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/databricks/databricks-sdk-go"
	"github.com/databricks/databricks-sdk-go/client"

	"github.com/shipline/shipline/internal/apperr"
	"github.com/shipline/shipline/internal/manifest"
	"github.com/shipline/shipline/internal/platform"
)

// Tags Shipline puts on every Databricks job it deploys.
const (
	TagProject = "shipline_project"
	TagJob     = "shipline_job"
	TagVersion = "shipline_version"
)

const dbfsBlock = 1 << 20 // DBFS put and add-block take at most 1 MB

type databricksFabric struct {
	name, host, tokenEnv, profile, root string
	env                                 Env

	// SDK settings; tests shorten them before the first call.
	retryTimeout, httpTimeout time.Duration
	rateLimit                 int

	mu   sync.Mutex
	ws   *databricks.WorkspaceClient
	raw  *client.DatabricksClient
	once *http.Client // for sendOnce: no retries
}

// defaultRateLimit is the client-side request rate per fabric client.
const defaultRateLimit = 100

// defaultRetryTimeout bounds the SDK's own retries of a call answered 429 or
// 503 (and Shipline's looked-up retries of a create, see createJob).
const defaultRetryTimeout = 30 * time.Second

// KindDatabricks is a Databricks workspace.
const KindDatabricks platform.FabricKind = "databricks"

// DatabricksSettings are a databricks fabric's platform.yaml keys.
type DatabricksSettings struct {
	Host         string `json:"host,omitempty"`      // the workspace URL
	TokenEnv     string `json:"token_env,omitempty"` // the variable holding a token
	Profile      string `json:"profile,omitempty"`   // a ~/.databrickscfg profile, instead of token_env
	ArtifactRoot string `json:"artifact_root"`       // /Volumes/..., /Workspace/... or dbfs:/...
}

var databricksKind = Kind{
	KindSpec: platform.KindSpec{
		Name:       KindDatabricks,
		Keys:       []string{"host", "token_env", "profile", "artifact_root"},
		Schedulers: []string{string(manifest.Databricks)},
		Decode:     decodeDatabricks,
	},
	Open: func(_ *platform.Config, f platform.Fabric, env Env) (Fabric, error) {
		s, err := settingsOf[DatabricksSettings](f)
		if err != nil {
			return nil, err
		}
		return newDatabricks(f.Name, s, env)
	},
}

// decodeDatabricks reads and checks a databricks fabric's keys.
func decodeDatabricks(d *platform.KindDecoder) any {
	var s DatabricksSettings
	name := d.Fabric()
	if d.Require("host", "add host: https://<workspace>.cloud.databricks.com (the workspace URL)") {
		s.Host = workspaceHost(d)
	}
	if d.Require("artifact_root", "add artifact_root: /Volumes/<catalog>/<schema>/<volume>/shipline (or /Workspace/... or dbfs:/...)") {
		s.ArtifactRoot = databricksLocation(d)
	}
	s.TokenEnv = d.Env("token_env", strings.ToUpper(strings.ReplaceAll(name, "-", "_"))+"_DATABRICKS_TOKEN")
	if d.Has("profile") {
		s.Profile, _ = d.String("profile", "name a profile of ~/.databrickscfg, or remove profile")
	}
	switch {
	case !d.Has("token_env") && !d.Has("profile"):
		d.Errorf("", "add token_env: <ENV_VAR holding a token> or profile: <~/.databrickscfg profile>",
			"databricks fabric %q has no credentials source", name)
	case d.Has("token_env") && d.Has("profile"):
		d.Errorf("profile", "keep only one of token_env and profile", "databricks fabric %q sets both token_env and profile", name)
	}
	return s
}

// workspaceHost checks host: a Databricks workspace URL, https, or http
// for a loopback host (the local emulator used in tests).
func workspaceHost(d *platform.KindDecoder) string {
	field := "fabrics." + d.Fabric() + ".host"
	s, ok := d.String("host", "give the workspace URL, e.g. https://adb-1234.azuredatabricks.net")
	if !ok {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		d.Errorf("host", "write the workspace URL only, e.g. https://adb-1234.azuredatabricks.net", "%s %q is not a workspace URL", field, s)
		return ""
	}
	if u.User != nil {
		d.Errorf("host", "remove the credentials from the URL; use token_env or profile", "%s holds credentials: secrets never go in this file", field)
		return ""
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && isLoopback(u.Hostname()):
	default:
		d.Errorf("host", "use https://", "%s %q must use https (http is only accepted for localhost)", field, s)
		return ""
	}
	return strings.TrimRight(s, "/")
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// databricksLocation checks artifact_root: /Volumes/..., /Workspace/... or dbfs:/...
func databricksLocation(d *platform.KindDecoder) string {
	field := "fabrics." + d.Fabric() + ".artifact_root"
	s, ok := d.String("artifact_root", "give a location such as /Volumes/main/shipline/artifacts")
	if !ok {
		return ""
	}
	const fix = "use an absolute workspace location: /Volumes/<catalog>/<schema>/<volume>/..., /Workspace/... or dbfs:/..."
	rest, prefix := s, ""
	switch {
	case strings.HasPrefix(s, "dbfs:/"):
		prefix, rest = "dbfs:", strings.TrimPrefix(s, "dbfs:")
	case strings.HasPrefix(s, "/Volumes/"), strings.HasPrefix(s, "/Workspace/"):
	default:
		d.Errorf("artifact_root", fix, "%s %q is not a Databricks location", field, s)
		return ""
	}
	for _, seg := range strings.Split(rest, "/") {
		if seg == ".." {
			d.Errorf("artifact_root", fix, "%s %q contains `..`", field, s)
			return ""
		}
	}
	if c := path.Clean(rest); c != rest {
		d.Errorf("artifact_root", fmt.Sprintf("write it as %s%s", prefix, c), "%s %q is not a clean path", field, s)
		return ""
	}
	if strings.HasPrefix(s, "/Volumes/") && len(strings.Split(strings.TrimPrefix(s, "/Volumes/"), "/")) < 3 {
		d.Errorf("artifact_root", "a volume path is /Volumes/<catalog>/<schema>/<volume>[/...]", "%s %q does not name a volume", field, s)
		return ""
	}
	return s
}

func newDatabricks(name string, f DatabricksSettings, env Env) (*databricksFabric, error) {
	if env == nil {
		env = os.Getenv
	}
	d := &databricksFabric{
		name: name, host: strings.TrimRight(f.Host, "/"), tokenEnv: f.TokenEnv, profile: f.Profile,
		root: strings.TrimRight(f.ArtifactRoot, "/"), env: env,
		retryTimeout: defaultRetryTimeout, httpTimeout: 60 * time.Second,
		// The SDK's default client-side limit (15 requests/s) serializes a deploy
		// of many jobs behind itself; the workspace answers 429 when it is busy,
		// which the SDK and Temporal retry.
		rateLimit: defaultRateLimit,
	}
	bad := func(msg string) (*databricksFabric, error) {
		return nil, &apperr.Error{Type: apperr.FabricConfig, Msg: fmt.Sprintf("fabric %q: %s in platform.yaml", name, msg)}
	}
	switch {
	case d.host == "" && d.profile == "":
		return bad("a databricks fabric needs host (or a profile that names one)")
	case d.tokenEnv == "" && d.profile == "":
		return bad("a databricks fabric needs token_env (the environment variable holding a token) or profile")
	case !strings.HasPrefix(d.root, "/Volumes/") && !strings.HasPrefix(d.root, "/Workspace/") && !strings.HasPrefix(d.root, "dbfs:/"):
		return bad(fmt.Sprintf("artifact_root %q must start with /Volumes/, /Workspace/ or dbfs:/", f.ArtifactRoot))
	}
	return d, nil
}

func (d *databricksFabric) Name() string { return d.name }

func (d *databricksFabric) ArtifactPath(project, version, pipeline, file string) string {
	return strings.Join([]string{d.root, project, version, pipeline, file}, "/")
}
