package gitrepo

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"
)

// sshServer serves git over ssh from root for clients holding the authorized
// key, running the real git upload-pack/receive-pack. It returns the address.
func sshServer(t *testing.T, root string, hostKey ssh.Signer, authorized ssh.PublicKey) string {
	t.Helper()
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if bytes.Equal(key.Marshal(), authorized.Marshal()) {
				return nil, nil
			}
			return nil, errors.New("unknown key")
		},
	}
	cfg.AddHostKey(hostKey)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serveSSH(c, cfg, root)
		}
	}()
	return ln.Addr().String()
}

func serveSSH(c net.Conn, cfg *ssh.ServerConfig, root string) {
	defer c.Close()
	_, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		return
	}
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "sessions only")
			continue
		}
		ch, chReqs, err := nc.Accept()
		if err != nil {
			return
		}
		go serveSession(ch, chReqs, root)
	}
}

func serveSession(ch ssh.Channel, reqs <-chan *ssh.Request, root string) {
	defer ch.Close()
	for req := range reqs {
		if req.Type != "exec" {
			_ = req.Reply(req.Type == "env", nil)
			continue
		}
		var payload struct{ Command string }
		if err := ssh.Unmarshal(req.Payload, &payload); err != nil {
			_ = req.Reply(false, nil)
			return
		}
		// "git-upload-pack '/remote.git'"
		name, arg, _ := strings.Cut(payload.Command, " ")
		service, ok := strings.CutPrefix(name, "git-")
		if !ok || (service != "upload-pack" && service != "receive-pack") {
			_ = req.Reply(false, nil)
			return
		}
		dir := filepath.Join(root, filepath.FromSlash(strings.Trim(arg, "'\"")))
		_ = req.Reply(true, nil)
		cmd := exec.Command("git", service, dir)
		cmd.Stdout, cmd.Stderr = ch, ch.Stderr()
		stdin, err := cmd.StdinPipe()
		status := uint32(1)
		if err == nil && cmd.Start() == nil {
			go func() { _, _ = io.Copy(stdin, ch); _ = stdin.Close() }()
			if cmd.Wait() == nil {
				status = 0
			}
		}
		_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{status}))
		return
	}
}

// serveAgent runs an ssh agent holding key on a unix socket and returns its path.
func serveAgent(t *testing.T, key ed25519.PrivateKey) string {
	t.Helper()
	ring := agent.NewKeyring()
	if err := ring.Add(agent.AddedKey{PrivateKey: key}); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _ = agent.ServeAgent(ring, c) }()
		}
	}()
	return sock
}

// newKey makes an ed25519 key, returning it, its signer and an OpenSSH PEM file.
func newKey(t *testing.T, dir, name string) (ed25519.PrivateKey, ssh.Signer, string) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, name)
	if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	return priv, signer, file
}

func TestSSH(t *testing.T) {
	f := newFixture(t, map[string]string{"README": "hello\n"})
	commit := gitCmd(t, f.work, "rev-parse", "HEAD")
	keys := t.TempDir()
	_, hostKey, _ := newKey(t, keys, "host")
	clientPriv, client, clientFile := newKey(t, keys, "client")
	_, _, strangerFile := newKey(t, keys, "stranger")
	addr := sshServer(t, filepath.Dir(f.bare), hostKey, client.PublicKey())

	knownHosts := filepath.Join(keys, "known_hosts")
	line := knownhosts.Line([]string{knownhosts.Normalize(addr)}, hostKey.PublicKey())
	if err := os.WriteFile(knownHosts, []byte(line+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	otherHosts := filepath.Join(keys, "other_known_hosts")
	_, other, _ := newKey(t, keys, "other-host")
	line = knownhosts.Line([]string{knownhosts.Normalize(addr)}, other.PublicKey())
	if err := os.WriteFile(otherHosts, []byte(line+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	url := "ssh://git@" + addr + "/" + filepath.Base(f.bare)
	mirror := func(key, hosts string, env map[string]string) *Mirror {
		s := &Store{Dir: t.TempDir(), Getenv: func(k string) string { return env[k] }}
		m, err := s.Mirror(Remote{Project: "demo", URL: url, SSHKeyFile: key, SSHKnownHosts: hosts})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	ctx := context.Background()

	t.Run("key file", func(t *testing.T) {
		m := mirror(clientFile, knownHosts, nil)
		got, err := m.Resolve(ctx, "main")
		if err != nil || got != commit {
			t.Fatalf("Resolve = %s, %v", got, err)
		}
		res, err := m.CreateTag(ctx, tagReq(commit))
		if err != nil || !res.Created {
			t.Fatalf("CreateTag = %+v, %v", res, err)
		}
		if got := f.remoteGit(t, "rev-parse", "v1.0.0^{commit}"); got != commit {
			t.Errorf("remote v1.0.0 peels to %s", got)
		}
	})
	t.Run("agent", func(t *testing.T) {
		sock := serveAgent(t, clientPriv)
		m := mirror("", knownHosts, map[string]string{"SSH_AUTH_SOCK": sock})
		if got, err := m.Resolve(ctx, "main"); err != nil || got != commit {
			t.Fatalf("Resolve via agent = %s, %v", got, err)
		}
	})
	for _, tc := range []struct {
		name, key, hosts string
		env              map[string]string
		want             string
	}{
		{"rejected key", strangerFile, knownHosts, nil, "refused"},
		{"unknown host key", clientFile, otherHosts, nil, "host key"},
		{"no key and no agent", "", knownHosts, nil, "SSH_AUTH_SOCK"},
		{"missing key file", filepath.Join(keys, "nope"), knownHosts, nil, "ssh_key_file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := mirror(tc.key, tc.hosts, tc.env).Resolve(ctx, "main")
			if !errors.Is(err, ErrAuth) {
				t.Fatalf("err = %v, want ErrAuth", err)
			}
			t.Log(err)
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error lacks %q: %v", tc.want, err)
			}
		})
	}
}
