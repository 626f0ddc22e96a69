package temporalconn

import (
	"os"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/envconfig"

	"github.com/shipline/shipline/internal/platform"
)

// Plain is a connection without TLS or credentials to address and
// namespace, whatever the environment says: the embedded dev server's.
func Plain(address, namespace string) *Conn {
	return &Conn{
		Options: client.Options{HostPort: address, Namespace: namespace},
		Address: address, Namespace: namespace,
		sources: map[string]string{},
	}
}

// DevNamespace is the namespace a worker with an embedded dev server uses:
// platform.yaml's, overridden by TEMPORAL_NAMESPACE. Profiles and the other
// settings do not apply to the embedded server.
func DevNamespace(t *platform.Temporal, env envconfig.EnvLookup) string {
	prof := envconfig.ClientConfigProfile{Namespace: t.Namespace}
	if err := prof.ApplyEnvVars(onlyNamespace{env}); err != nil || prof.Namespace == "" {
		return orDefault(t.Namespace, DefaultNamespace)
	}
	return prof.Namespace
}

// onlyNamespace shows envconfig TEMPORAL_NAMESPACE alone.
type onlyNamespace struct{ env envconfig.EnvLookup }

func (o onlyNamespace) Environ() []string { return nil }
func (o onlyNamespace) LookupEnv(k string) (string, bool) {
	if k != "TEMPORAL_NAMESPACE" {
		return "", false
	}
	if o.env == nil {
		return os.LookupEnv(k)
	}
	return o.env.LookupEnv(k)
}

// EnvMap is an environment held in a map (for tests, and for callers that
// pass their own environment).
type EnvMap map[string]string

// Environ lists the variables as KEY=VALUE.
func (m EnvMap) Environ() []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	return out
}

// LookupEnv returns the variable's value and whether it is set.
func (m EnvMap) LookupEnv(k string) (string, bool) {
	v, ok := m[k]
	return v, ok
}
