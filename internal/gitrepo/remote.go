package gitrepo

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/shipline/shipline/internal/apperr"
)

// Remote is a project's git remote and where its credentials come from. It holds
// only names of environment variables and files, never a secret.
type Remote struct {
	// Project names the project in error messages.
	Project string
	// URL is file://, http(s)://, ssh://, scp-like user@host:path, or an absolute path.
	URL string
	// TokenEnv and UserEnv name the variables holding the HTTPS token and user
	// name (user default "shipline").
	TokenEnv string
	UserEnv  string
	// SSHKeyFile is a private key for ssh remotes; empty means the ssh agent
	// at $SSH_AUTH_SOCK.
	SSHKeyFile string
	// SSHKnownHosts is a known_hosts file; empty means $SSH_KNOWN_HOSTS or
	// ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts.
	SSHKnownHosts string
}

// DisplayURL is the remote as shown to users: the URL without any user info.
func DisplayURL(raw string) string {
	if strings.Contains(raw, "://") {
		u, err := url.Parse(raw)
		if err != nil {
			// Do not echo something we cannot parse: it may hold a password.
			if i := strings.LastIndex(raw, "@"); i >= 0 {
				if j := strings.Index(raw, "://"); j >= 0 && j < i {
					return raw[:j+3] + raw[i+1:]
				}
			}
			return raw
		}
		u.User = nil
		return u.String()
	}
	// scp-like user@host:path
	if i := strings.Index(raw, "@"); i >= 0 && strings.Contains(raw[i:], ":") && !strings.HasPrefix(raw, "/") {
		return raw[i+1:]
	}
	return raw
}

// protocol returns the transport of the remote: "file", "http", "https", "ssh", "git".
func (r Remote) endpoint() (*transport.Endpoint, error) {
	ep, err := transport.NewEndpoint(r.URL)
	if err != nil {
		return nil, newError(ErrInvalid, nil, fmt.Sprintf(
			"project %s: repo %q is not a git remote URL: set projects.%s.repo in platform.yaml to a file://, https://, ssh:// URL, user@host:path or an absolute path",
			r.Project, DisplayURL(r.URL), r.Project))
	}
	return ep, nil
}

// credentials is the auth method for one operation plus everything needed to
// keep its secrets out of error messages.
type credentials struct {
	method  transport.AuthMethod
	secrets []string
	close   func()
	// describe says where the credentials came from, for messages.
	describe string
}

// credentials builds the auth method from the URL scheme, reading the
// environment through getenv at call time.
func (r Remote) credentials(getenv func(string) string) (*credentials, error) {
	ep, err := r.endpoint()
	if err != nil {
		return nil, err
	}
	c := &credentials{close: func() {}}
	if ep.Password != "" {
		c.secrets = append(c.secrets, ep.Password, url.QueryEscape(ep.Password))
	}
	switch ep.Protocol {
	case "http", "https":
		if r.TokenEnv == "" {
			c.describe = fmt.Sprintf("no credentials (platform.yaml sets no projects.%s.git_token_env)", r.Project)
			return c, nil
		}
		token := getenv(r.TokenEnv)
		if token == "" {
			c.describe = fmt.Sprintf("no credentials ($%s is empty or unset in the worker's environment)", r.TokenEnv)
			return c, nil
		}
		user := "shipline"
		if r.UserEnv != "" {
			if u := getenv(r.UserEnv); u != "" {
				user = u
			}
		}
		c.method = &githttp.BasicAuth{Username: user, Password: token}
		c.secrets = append(c.secrets, token, url.QueryEscape(token))
		c.describe = fmt.Sprintf("the token in $%s (user %q)", r.TokenEnv, user)
		return c, nil
	case "ssh":
		return r.sshCredentials(ep, getenv, c)
	default: // file, git (unauthenticated)
		return c, nil
	}
}

func (r Remote) sshCredentials(ep *transport.Endpoint, getenv func(string) string, c *credentials) (*credentials, error) {
	user := ep.User
	if user == "" {
		user = "git"
	}
	hostKeys, err := r.hostKeys(ep)
	if err != nil {
		return nil, err
	}
	if r.SSHKeyFile != "" {
		keys, err := gitssh.NewPublicKeysFromFile(user, r.SSHKeyFile, "")
		if err != nil {
			return nil, newError(ErrAuth, scrub(err), fmt.Sprintf(
				"project %s: cannot use ssh key file %s for %s: %v; set projects.%s.ssh_key_file to a readable private key without a passphrase (or leave it empty to use the ssh agent)",
				r.Project, r.SSHKeyFile, DisplayURL(r.URL), err, r.Project))
		}
		keys.HostKeyCallbackHelper = hostKeys
		c.method = keys
		c.describe = fmt.Sprintf("ssh key file %s (user %q)", r.SSHKeyFile, user)
		return c, nil
	}
	sock := getenv("SSH_AUTH_SOCK")
	if sock == "" {
		return nil, newError(ErrAuth, nil, fmt.Sprintf(
			"project %s: no ssh credentials for %s: set projects.%s.ssh_key_file in platform.yaml, or run the worker with an ssh agent ($SSH_AUTH_SOCK)",
			r.Project, DisplayURL(r.URL), r.Project))
	}
	conn, err := net.Dial("unix", sock)
	if err != nil {
		return nil, newError(ErrAuth, scrub(err), fmt.Sprintf(
			"project %s: cannot reach the ssh agent at $SSH_AUTH_SOCK (%s): %v; start the agent or set projects.%s.ssh_key_file",
			r.Project, sock, err, r.Project))
	}
	ag := agent.NewClient(conn)
	c.method = &gitssh.PublicKeysCallback{User: user, Callback: ag.Signers, HostKeyCallbackHelper: hostKeys}
	c.close = func() { _ = conn.Close() }
	c.describe = fmt.Sprintf("the keys of the ssh agent (user %q)", user)
	return c, nil
}

// hostKeys verifies the server against SSHKnownHosts or the default files.
func (r Remote) hostKeys(ep *transport.Endpoint) (gitssh.HostKeyCallbackHelper, error) {
	var files []string
	if r.SSHKnownHosts != "" {
		files = []string{r.SSHKnownHosts}
	}
	db, err := gitssh.NewKnownHostsDb(files...)
	if err != nil {
		return gitssh.HostKeyCallbackHelper{}, newError(ErrAuth, scrub(err), fmt.Sprintf(
			"project %s: cannot read known_hosts to verify %s: %v; set projects.%s.ssh_known_hosts to a known_hosts file listing the server's host key",
			r.Project, DisplayURL(r.URL), err, r.Project))
	}
	port := ep.Port
	if port == 0 {
		port = 22
	}
	hostPort := net.JoinHostPort(ep.Host, strconv.Itoa(port))
	return gitssh.HostKeyCallbackHelper{
		HostKeyCallback:   db.HostKeyCallback(),
		HostKeyAlgorithms: db.HostKeyAlgorithms(hostPort),
	}, nil
}

// classify turns an error of a remote operation into a permanent *apperr.Error when the
// remote refused us, or a scrubbed transient error otherwise.
func (r Remote) classify(op string, err error, c *credentials) error {
	if err == nil {
		return nil
	}
	var secrets []string
	describe := "no credentials"
	if c != nil {
		secrets, describe = c.secrets, c.describe
	}
	clean := scrub(err, secrets...)
	remote := DisplayURL(r.URL)
	var ge *apperr.Error
	if errors.As(err, &ge) {
		return err
	}
	msg := err.Error()
	switch {
	case errors.Is(err, transport.ErrAuthenticationRequired):
		return newError(ErrAuth, clean, fmt.Sprintf(
			"project %s: git remote %s refused the %s (HTTP 401), using %s: %s",
			r.Project, remote, op, describe, r.httpFix()))
	case errors.Is(err, transport.ErrAuthorizationFailed):
		return newError(ErrAuth, clean, fmt.Sprintf(
			"project %s: git remote %s forbade the %s (HTTP 403), using %s: give the token's user permission to read the repository and push tags, or %s",
			r.Project, remote, op, describe, r.httpFix()))
	case errors.Is(err, transport.ErrRepositoryNotFound):
		who := ""
		if describe != "" {
			who = " visible to " + describe
		}
		return newError(ErrAuth, clean, fmt.Sprintf(
			"project %s: git remote %s has no repository%s: check projects.%s.repo in platform.yaml and that the credentials may read it",
			r.Project, remote, who, r.Project))
	case strings.Contains(msg, "unable to authenticate"):
		return newError(ErrAuth, clean, fmt.Sprintf(
			"project %s: ssh server of %s refused the %s, using %s: add the public key to the repository (a deploy key with write access) or set projects.%s.ssh_key_file",
			r.Project, remote, op, describe, r.Project))
	case strings.Contains(msg, "knownhosts:") || strings.Contains(msg, "known hosts callback") || strings.Contains(msg, "host key"):
		return newError(ErrAuth, clean, fmt.Sprintf(
			"project %s: cannot verify the ssh host key of %s: %s; add the server's key to the known_hosts file (projects.%s.ssh_known_hosts, default ~/.ssh/known_hosts)",
			r.Project, remote, clean, r.Project))
	}
	var passErr *ssh.PassphraseMissingError
	if errors.As(err, &passErr) {
		return newError(ErrAuth, clean, fmt.Sprintf(
			"project %s: ssh key file %s needs a passphrase: use a key without one, or the ssh agent", r.Project, r.SSHKeyFile))
	}
	return &scrubbed{msg: fmt.Sprintf("git %s, remote %s: %s", op, remote, clean), ctx: errors.Unwrap(clean)}
}

func (r Remote) httpFix() string {
	if r.TokenEnv == "" {
		return fmt.Sprintf("set projects.%s.git_token_env in platform.yaml to the name of a variable holding a token, and set it in the worker's environment", r.Project)
	}
	return fmt.Sprintf("set $%s in the worker's environment to a valid token that may read the repository and push tags", r.TokenEnv)
}
