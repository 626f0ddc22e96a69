package msgauth

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// GeneratedFile is the secret a worker generates under state_dir when
// platform.yaml's internal_auth names none.
const GeneratedFile = "internal-secret"

const secretFix = "at least 32 characters, the same on every worker, e.g. the output of `openssl rand -hex 32`"

// LoadSecret reads the internal message secret: from the environment variable
// secretEnv, or the file secretFile (surrounding whitespace trimmed), or, when
// platform.yaml names neither, from <stateDir>/internal-secret, generated on
// first use (workers sharing state_dir share it). source says where it came from.
func LoadSecret(secretEnv, secretFile, stateDir string) (secret []byte, source string, err error) {
	switch {
	case secretEnv != "":
		v := strings.TrimSpace(os.Getenv(secretEnv))
		if v == "" {
			return nil, "", fmt.Errorf("internal_auth.secret_env names %s, which is not set: set it on every worker to %s", secretEnv, secretFix)
		}
		return checkLen([]byte(v), "environment variable "+secretEnv)
	case secretFile != "":
		data, err := os.ReadFile(secretFile)
		if err != nil {
			return nil, "", fmt.Errorf("internal_auth.secret_file: cannot read %s: %w; write into it %s", secretFile, err, secretFix)
		}
		return checkLen([]byte(strings.TrimSpace(string(data))), "file "+secretFile)
	}
	path := filepath.Join(stateDir, GeneratedFile)
	if data, err := os.ReadFile(path); err == nil {
		return checkLen([]byte(strings.TrimSpace(string(data))), "file "+path)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, "", fmt.Errorf("read the internal message secret %s: %w", path, err)
	}
	if err := generate(path); err != nil {
		return nil, "", fmt.Errorf("generate the internal message secret %s: %w (or set internal_auth in platform.yaml)", path, err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, "", err
	}
	return checkLen([]byte(strings.TrimSpace(string(data))), "generated file "+path)
}

func checkLen(secret []byte, source string) ([]byte, string, error) {
	if len(secret) < MinSecretLen {
		return nil, "", fmt.Errorf("the internal message secret in %s is too short (%d characters): use %s", source, len(secret), secretFix)
	}
	return secret, source, nil
}

// generate writes a new random secret at path unless another worker wrote one
// first (the file appears whole or not at all).
func generate(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), GeneratedFile+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(hex.EncodeToString(b[:]) + "\n"); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	// Link fails when the file exists: then the other worker's secret stands.
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return nil
}
