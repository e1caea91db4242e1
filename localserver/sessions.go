package localserver

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
)

// newSecret returns 32 random bytes, hex-encoded.
func newSecret() (string, error) {
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return "", fmt.Errorf("make secret: %w", err)
	}
	return hex.EncodeToString(buf), nil
}

// writeSecret replaces the secret in path atomically: a private temporary
// file beside it, synced, renamed over it, and the directory synced. A
// crash leaves the old secret or the new one, never a torn file.
func writeSecret(path, secret string) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write secret: %w", err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return fmt.Errorf("write secret: %w", err)
	}
	if _, err := f.WriteString(secret + "\n"); err != nil {
		return fmt.Errorf("write secret: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write secret: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write secret: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write secret: %w", err)
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// RotateSecret replaces the secret in path with a new random one and
// returns it. `synctray logout --all` uses it on the session key when no
// host is running.
func RotateSecret(path string) (string, error) {
	s, err := newSecret()
	if err != nil {
		return "", err
	}
	if err := writeSecret(path, s); err != nil {
		return "", err
	}
	return s, nil
}

// RevokeSessions signs out every browser: it replaces the session key at
// once in memory (cookies stop working, WebSockets opened with one are
// closed, unused login links are dropped) and then in
// <data-dir>/session-key, so a restart does not bring the old sessions
// back. An error means the new key could not be saved: the sessions are
// revoked until the host restarts.
func (h *Host) RevokeSessions() error {
	key, err := newSecret()
	if err != nil {
		return err
	}
	h.guard.revokeSessions([]byte(key))
	h.log.Info("browser sessions revoked")
	if err := writeSecret(filepath.Join(h.cfg.DataDir, "session-key"), key); err != nil {
		return fmt.Errorf("save session key: %w", err)
	}
	return nil
}
