// Package platform reads platform.yaml: the worker's configuration, owned by the
// platform admins. It names the Temporal endpoint, the state directory, teams,
// projects, fabrics and promotion stages. Secrets never live in this file: it only
// names the environment variables (or Databricks profiles) that hold them.
package platform

import (
	"time"

	"github.com/shipline/shipline/internal/window"
)

// Config is a parsed and validated platform.yaml.
type Config struct {
	// Path is the file the config was read from; relative paths inside the file
	// (state_dir, local repos, local fabric roots, dags folders) are resolved
	// against its directory by Load.
	Path     string   `json:"path,omitempty"`
	Temporal Temporal `json:"temporal"`
	StateDir string   `json:"state_dir"`
	// Storage is the URL of the object store workers share (build cache, build
	// logs): file:// (made absolute), s3://, gs:// or azblob://; empty means
	// state_dir as a file:// store (see StorageURL).
	Storage   string             `json:"storage,omitempty"`
	Teams     map[string]Team    `json:"teams"`
	Projects  map[string]Project `json:"projects"`
	Fabrics   map[string]Fabric  `json:"fabrics"`
	Promotion Promotion          `json:"promotion"`
	// Users registers people's public keys (OpenSSH ssh-ed25519 lines) for signed requests.
	Users map[string]User `json:"users,omitempty"`
	// RequireSignatures refuses unsigned mutating requests (and --as is no longer trusted).
	RequireSignatures bool `json:"require_signatures,omitempty"`
	// InternalAuth names where the workers read the secret that authenticates
	// the messages Shipline's workflows send each other; nil: generated under state_dir.
	InternalAuth *InternalAuth `json:"internal_auth,omitempty"`
	// Windows are the platform-wide change windows and freezes (windows.go).
	Windows *window.Spec `json:"windows,omitempty"`
	// PackageIndexes are where libraries are published (package_indexes.go).
	PackageIndexes map[string]PackageIndex `json:"package_indexes,omitempty"`
	// Notifications are where events (approval needed, parked, ...) are posted.
	Notifications []Notification `json:"notifications,omitempty"`
	// Web configures the dashboard (nil: not configured; --dev serves it with auth dev).
	Web *Web `json:"web,omitempty"`
	// Delegates registers services that sign on behalf of users (the dashboard).
	Delegates map[string]Delegate `json:"delegates,omitempty"`
}

// InternalAuth names the secret of internal messages: one of an environment
// variable (SecretEnv) or a file (SecretFile). The secret itself never is in
// platform.yaml.
type InternalAuth struct {
	SecretEnv  string `json:"secret_env,omitempty"`
	SecretFile string `json:"secret_file,omitempty"`
}

// User is a person, or a service identity, who signs requests.
type User struct {
	Keys []string `json:"keys"`
	// Service marks a service identity (a CI job's key): it may release,
	// deploy and promote by the same rules as anyone, but never approves or
	// rejects a promotion gate.
	Service bool `json:"service,omitempty"`
}

// Temporal says where and how the worker connects to Temporal. Secrets are
// never here: the API key is read from the environment variable APIKeyEnv
// names, TLS keys from files. The settings of a profile of the Temporal
// environment-configuration file (Profile, ConfigFile) come first; these
// keys override them, and TEMPORAL_* environment variables override both
// (see internal/temporalconn).
type Temporal struct {
	Address   string `json:"address"`    // default 127.0.0.1:7233
	Namespace string `json:"namespace"`  // default "default"
	TaskQueue string `json:"task_queue"` // default "shipline"
	// Encryption, when set, encrypts every payload Shipline writes (nil: none).
	Encryption *Encryption `json:"encryption,omitempty"`
	// TLS turns TLS on and names the CA, client certificate and key files.
	TLS *TemporalTLS `json:"tls,omitempty"`
	// APIKeyEnv names the environment variable holding a Temporal Cloud API
	// key (TLS is then on unless tls.enabled is false).
	APIKeyEnv string `json:"api_key_env,omitempty"`
	// Profile names a profile of the Temporal TOML config file.
	Profile string `json:"profile,omitempty"`
	// ConfigFile is the Temporal TOML config file (default: the one the
	// temporal CLI reads, or TEMPORAL_CONFIG_FILE).
	ConfigFile string `json:"config_file,omitempty"`
}

// TemporalTLS is the temporal.tls block: file paths only.
type TemporalTLS struct {
	// Enabled false turns TLS off even with an API key; nil: on, since the
	// block is there.
	Enabled *bool `json:"enabled,omitempty"`
	// CAFile is the CA certificate that signed the server's certificate
	// (default: the system's roots).
	CAFile string `json:"ca_file,omitempty"`
	// CertFile and KeyFile are the client certificate and key, for mTLS.
	CertFile string `json:"cert_file,omitempty"`
	KeyFile  string `json:"key_file,omitempty"`
	// ServerName is the name the server's certificate is checked against
	// (default: the host of address).
	ServerName string `json:"server_name,omitempty"`
	// DisableHostVerification skips checking the server's certificate.
	DisableHostVerification bool `json:"disable_host_verification,omitempty"`
}

// Team is a named set of users.
type Team struct {
	Members []string `json:"members"`
}

// Project is one registered project.
type Project struct {
	Name string `json:"name"`
	// Repo is the git remote: file://, https://, ssh:// (or scp-like git@host:path),
	// or a plain local path which Load turns into an absolute path.
	Repo string `json:"repo"`
	// GitTokenEnv names the environment variable holding an HTTPS token.
	GitTokenEnv string `json:"git_token_env,omitempty"`
	// GitUserEnv optionally names the variable holding the HTTPS user name (default "shipline").
	GitUserEnv string `json:"git_user_env,omitempty"`
	// SSHKeyFile is a private key file for ssh remotes; empty means use the ssh agent.
	SSHKeyFile string `json:"ssh_key_file,omitempty"`
	// SSHKnownHosts is a known_hosts file; empty means ~/.ssh/known_hosts.
	SSHKnownHosts string `json:"ssh_known_hosts,omitempty"`
	// GitRetry is how long a release keeps retrying an unreachable remote
	// before it parks (default 10m).
	GitRetry time.Duration `json:"git_retry,omitempty"`
	Admins   []string      `json:"admins"`
	// AutoDeploy: a Release also deploys (default true).
	AutoDeploy bool `json:"auto_deploy"`
	// SelectiveJobs allows deploying chosen jobs; not together with AutoDeploy.
	SelectiveJobs bool `json:"selective_jobs"`
}

// FabricKind names a kind of execution environment; the kinds are
// registered by internal/fabric (see KindSpec).
type FabricKind string

// Fabric is a named execution environment.
type Fabric struct {
	Name      string            `json:"name"`
	Kind      FabricKind        `json:"kind"`
	Owner     string            `json:"owner"`
	Variables map[string]string `json:"variables,omitempty"`
	// PauseSchedules makes deployed schedules paused unless the manifest overrides it.
	PauseSchedules bool `json:"pause_schedules,omitempty"`
	// ActiveRuns says what a deployment does before it replaces or deletes a
	// job that has a run in progress: wait for it (the default), fail, or
	// cancel it. ActiveRunsTimeout bounds the wait (and a cancel's wait for the
	// run to stop); 0 means DefaultActiveRunsTimeout.
	ActiveRuns        ActiveRunsPolicy `json:"active_runs,omitempty"`
	ActiveRunsTimeout time.Duration    `json:"active_runs_timeout,omitempty"`

	// Settings are the kind's own settings, as its KindSpec.Decode read them
	// (a struct of the kind's file in internal/fabric).
	Settings any `json:"settings,omitempty"`
}

// ActiveRunsPolicy is a fabric's active_runs setting.
type ActiveRunsPolicy string

const (
	ActiveRunsWait   ActiveRunsPolicy = "wait"
	ActiveRunsFail   ActiveRunsPolicy = "fail"
	ActiveRunsCancel ActiveRunsPolicy = "cancel"
)

// DefaultActiveRunsTimeout bounds a deployment's wait for active runs when
// the fabric sets no active_runs_timeout.
const DefaultActiveRunsTimeout = time.Hour

// RunsPolicy is the fabric's active_runs setting and its timeout, with the
// defaults filled in.
func (f Fabric) RunsPolicy() (ActiveRunsPolicy, time.Duration) {
	p, t := f.ActiveRuns, f.ActiveRunsTimeout
	if p == "" {
		p = ActiveRunsWait
	}
	if t == 0 {
		t = DefaultActiveRunsTimeout
	}
	return p, t
}

// SeesRuns tells whether Shipline can read the runs of jobs on the fabric
// (its kind decides: an Airflow fabric only through its REST API).
func (f Fabric) SeesRuns() bool {
	k, ok := kinds[f.Kind]
	return !ok || k.SeesRuns == nil || k.SeesRuns(f)
}

// Promotion lists the ordered stages a release is promoted through.
type Promotion struct {
	Stages []Stage `json:"stages"`
}

// Stage is one step of a promotion.
type Stage struct {
	Name     string    `json:"name"`
	Fabrics  []string  `json:"fabrics"`
	Approval *Approval `json:"approval,omitempty"`
	// Soak holds the stage until this long after the previous stage was
	// verified (deployed, for a stage without verify).
	Soak time.Duration `json:"soak,omitempty"`
	// Verify names the jobs whose runs on the stage's fabrics must succeed
	// before the stage counts as reached; nil: a deployment is verified.
	Verify *Verify `json:"verify,omitempty"`
	// Auto continues a promotion into this stage (no approval allowed) once
	// the previous stage is verified, without a new promote.
	Auto bool `json:"auto,omitempty"`
	// OnFailure is what a failed verification does: OnFailureStop (also when
	// empty) or OnFailureRollback.
	OnFailure string `json:"on_failure,omitempty"`
	// Windows are the stage's change windows and freezes (windows.go).
	Windows *window.Spec `json:"windows,omitempty"`
}

// What a failed verification of a stage does.
const (
	// OnFailureStop ends the promotion; the stage keeps what was deployed.
	OnFailureStop = "stop"
	// OnFailureRollback redeploys the stage's previous verified release and holds the stage.
	OnFailureRollback = "rollback"
)

// DefaultVerifyTimeout bounds a stage's verification when verify.timeout is not set.
const DefaultVerifyTimeout = 2 * time.Hour

// Verify is a stage's verification: runs of deployed jobs that must succeed.
type Verify struct {
	Jobs    []string          `json:"jobs"`
	Params  map[string]string `json:"params,omitempty"`
	Timeout time.Duration     `json:"timeout"`
}

// Approval is the gate of a stage.
type Approval struct {
	Team     string `json:"team"`
	Required int    `json:"required"`
	// SelfApproval false forbids the requester (and the releaser) from approving. Default true.
	SelfApproval bool          `json:"self_approval"`
	Timeout      time.Duration `json:"timeout,omitempty"`
}
