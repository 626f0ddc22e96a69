package temporalconn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Error is a connection failure that waiting does not cure: the TLS
// handshake failed or the server refused the credentials. It says what is
// wrong and which setting fixes it.
type Error struct {
	Problem string // what is wrong
	Fix     string // what to set
	Err     error  // the dial error
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s: %s (%s)", e.Problem, e.Fix, detail(e.Err))
}

func (e *Error) Unwrap() error { return e.Err }

// Dial connects with opts (Conn.Options plus the caller's additions) and
// checks the namespace can be read, so that a refused API key or client
// certificate shows at once rather than on the first real call. Failures
// that no retry cures come back as *Error.
func (c *Conn) Dial(ctx context.Context, opts client.Options) (client.Client, error) {
	cl, err := c.DialOnce(ctx, opts)
	if err != nil {
		return nil, c.Explain(err)
	}
	return cl, nil
}

// DialOnce dials and describes the namespace (closing the client on
// failure). When TLS is on and the dial failed for a reason that does not
// tell (a server that refuses a client certificate after a TLS 1.3
// handshake may look like a broken pipe to gRPC), a plain TLS handshake
// asks the server why, and its answer is joined to the error.
func (c *Conn) DialOnce(ctx context.Context, opts client.Options) (client.Client, error) {
	cl, err := client.DialContext(ctx, opts)
	if err == nil {
		_, err = cl.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: opts.Namespace})
		if err == nil {
			return cl, nil
		}
		cl.Close()
		return nil, err
	}
	if cfg := opts.ConnectionOptions.TLS; cfg != nil && kindOf(err) == notPermanent {
		if why := probeTLS(ctx, opts.HostPort, cfg); why != nil {
			return nil, errors.Join(err, fmt.Errorf("TLS handshake: %w", why))
		}
	}
	if opts.ConnectionOptions.TLS == nil && strings.Contains(err.Error(), "server preface") && speaksTLS(ctx, opts.HostPort) {
		return nil, errors.Join(err, errSpeaksTLS)
	}
	return nil, err
}

// errSpeaksTLS marks a plain-text dial to a server that speaks TLS.
var errSpeaksTLS = errors.New("the server speaks TLS")

// speaksTLS tells whether the server at address answers a TLS handshake
// (its certificate unchecked: only the protocol matters here).
func speaksTLS(ctx context.Context, address string) bool {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cfg := &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}} //nolint:gosec // a probe, no data is sent
	conn, err := (&tls.Dialer{Config: cfg}).DialContext(ctx, "tcp", address)
	if err != nil {
		return strings.Contains(err.Error(), "remote error: tls:")
	}
	_ = conn.Close()
	return true
}

// probeTLS makes a TLS handshake with address and waits a moment for the
// server's verdict on it. It returns a TLS error (the server's alert or
// the handshake's failure), or nil when there is none to tell.
func probeTLS(ctx context.Context, address string, cfg *tls.Config) error {
	cfg = cfg.Clone()
	cfg.NextProtos = []string{"h2"}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := (&tls.Dialer{Config: cfg}).DialContext(ctx, "tcp", address)
	if err != nil {
		if strings.Contains(err.Error(), "tls:") || strings.Contains(err.Error(), "x509:") {
			return err
		}
		return nil
	}
	defer func() { _ = conn.Close() }()
	// With TLS 1.3 the server judges the client's certificate after the
	// client has finished its handshake: its verdict is the first record.
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Read(make([]byte, 1)); err != nil && strings.Contains(err.Error(), "tls:") {
		return err
	}
	return nil
}

// Permanent tells whether a dial error is one that waiting does not cure:
// a TLS handshake failure or refused credentials.
func Permanent(err error) bool {
	var e *Error
	return errors.As(err, &e) || kindOf(err) != notPermanent
}

type kind int

const (
	notPermanent kind = iota
	unknownAuthority
	wrongHost
	expired
	clientCertRefused
	notTLSServer
	tlsServer
	refused
	otherTLS
)

// kindOf classifies a dial error. gRPC hands TLS failures over as text
// inside an Unavailable status, so they are recognised by their message.
func kindOf(err error) kind {
	if err == nil {
		return notPermanent
	}
	var denied *serviceerror.PermissionDenied
	if errors.As(err, &denied) {
		return refused
	}
	switch status.Code(err) {
	case codes.Unauthenticated, codes.PermissionDenied:
		return refused
	}
	if errors.Is(err, errSpeaksTLS) {
		return tlsServer
	}
	msg := err.Error()
	switch {
	case clientCertAlert(msg):
		return clientCertRefused
	case strings.Contains(msg, "x509: certificate signed by unknown authority"):
		return unknownAuthority
	case strings.Contains(msg, "x509: certificate is valid for"), strings.Contains(msg, "x509: certificate is not valid for any names"):
		return wrongHost
	case strings.Contains(msg, "x509: certificate has expired"), strings.Contains(msg, "x509: certificate is not yet valid"):
		return expired
	case strings.Contains(msg, "first record does not look like a TLS handshake"):
		return notTLSServer
	case strings.Contains(msg, "authentication handshake failed"), strings.Contains(msg, "x509:"),
		strings.Contains(msg, "remote error: tls:"):
		return otherTLS
	}
	return notPermanent
}

// clientCertAlert tells whether msg holds a TLS alert by which a server
// refuses the client's certificate (or its absence).
func clientCertAlert(msg string) bool {
	for _, alert := range []string{"certificate required", "bad certificate", "unknown certificate authority",
		"certificate unknown", "unknown certificate", "certificate expired", "expired certificate", "certificate revoked"} {
		if strings.Contains(msg, "remote error: tls: "+alert) {
			return true
		}
	}
	return false
}

// Explain turns a dial error that no retry cures into an *Error naming the
// setting to fix; other errors come back unchanged.
func (c *Conn) Explain(err error) error {
	var done *Error
	if errors.As(err, &done) {
		return err
	}
	e := &Error{Err: err}
	switch kindOf(err) {
	case unknownAuthority:
		if c.caPath != "" || c.sources[fCAData] != "" {
			e.Problem = fmt.Sprintf("the server's TLS certificate is not signed by the CA %s(from %s)", c.caName(), c.source(fCA))
			e.Fix = fmt.Sprintf("give the CA certificate that signed the server's certificate (%s), or set %s if the certificate is issued for another name",
				c.settingNames(fCA), c.settingNames(fServerName))
		} else {
			e.Problem = "the server's TLS certificate is not signed by a CA this machine trusts"
			e.Fix = fmt.Sprintf("give the CA certificate that signed it with %s", c.settingNames(fCA))
		}
	case wrongHost:
		e.Problem = fmt.Sprintf("the server's TLS certificate is not issued for %s", c.host())
		e.Fix = fmt.Sprintf("set %s to a name the certificate is issued for", c.settingNames(fServerName))
	case expired:
		e.Problem = "a TLS certificate has expired or is not valid yet"
		e.Fix = "renew the server's or the client's certificate (or check this machine's clock)"
	case clientCertRefused:
		if c.hasCert {
			e.Problem = fmt.Sprintf("the server refused the client certificate (from %s)", c.source(fCert))
			e.Fix = "give a client certificate signed by a CA the server trusts for clients, with its key"
		} else {
			e.Problem = "the server requires a client certificate (mTLS) and none is given"
			e.Fix = fmt.Sprintf("set %s and %s", c.settingNames(fCert), c.settingNames(fKey))
		}
	case notTLSServer:
		e.Problem = "TLS is on but the server at " + c.Address + " does not speak TLS"
		e.Fix = "check the address, or turn TLS off with " + c.tlsOffSetting()
		if c.hasAPIKey {
			e.Fix += " (an API key turns it on)"
		}
	case tlsServer:
		e.Problem = "the server at " + c.Address + " speaks TLS but TLS is off"
		e.Fix = fmt.Sprintf("turn TLS on with %s, and give the CA that signed the server's certificate with %s", c.tlsOnSetting(), c.settingNames(fCA))
	case otherTLS:
		e.Problem = "the TLS handshake with " + c.Address + " failed"
		e.Fix = fmt.Sprintf("check %s and %s", c.settingNames(fCA), c.settingNames(fCert))
	case refused:
		switch {
		case c.hasAPIKey:
			e.Problem = fmt.Sprintf("Temporal refused the API key (from %s) for namespace %s", c.source(fAPIKey), c.Namespace)
			e.Fix = fmt.Sprintf("check the key is valid, not expired and allowed on the namespace; set the right one with %s", c.settingNames(fAPIKey))
		case c.hasCert:
			e.Problem = fmt.Sprintf("Temporal refused the client certificate (from %s) for namespace %s", c.source(fCert), c.Namespace)
			e.Fix = "use a certificate the server's authorizer maps to a role on the namespace, or an API key"
		default:
			e.Problem = fmt.Sprintf("Temporal requires credentials for namespace %s and none are given", c.Namespace)
			e.Fix = fmt.Sprintf("set an API key with %s, or a client certificate with %s and %s",
				c.settingNames(fAPIKey), c.settingNames(fCert), c.settingNames(fKey))
		}
	default:
		return err
	}
	return e
}

func (c *Conn) caName() string {
	if c.caPath != "" {
		return filepath.Clean(c.caPath) + " "
	}
	return ""
}

func (c *Conn) host() string {
	if s, ok := c.sources[fServerName]; ok && s != "" {
		return "the server name given by " + s
	}
	return "the host of " + c.Address
}

func (c *Conn) tlsOnSetting() string {
	if c.worker {
		return "temporal.tls in " + c.file + " or TEMPORAL_TLS=true"
	}
	return "--tls or TEMPORAL_TLS=true"
}

func (c *Conn) tlsOffSetting() string {
	if c.worker {
		return "temporal.tls: false in " + c.file + " or TEMPORAL_TLS=false"
	}
	return "--tls=false or TEMPORAL_TLS=false"
}

// detail is the telling end of a dial error: from "x509:" or "tls:" on
// when there is one, else the whole message.
func detail(err error) string {
	msg := strings.ReplaceAll(err.Error(), "\n", "; ")
	for _, marker := range []string{"x509:", "remote error: tls:", "tls:"} {
		if i := strings.Index(msg, marker); i >= 0 {
			return strings.TrimRight(msg[i:], `"`)
		}
	}
	return msg
}
