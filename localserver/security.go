package localserver

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// LoadOrCreateSecret returns the secret kept in path, creating it (32
// random bytes, hex, mode 0600) when the file does not exist. A file that
// other users can read is refused: anyone holding the secret controls the
// outbox.
func LoadOrCreateSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		buf := make([]byte, 32)
		if _, err := rand.Read(buf); err != nil {
			return "", fmt.Errorf("make secret: %w", err)
		}
		s := hex.EncodeToString(buf)
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) { // lost a race with another process: use theirs
			return LoadOrCreateSecret(path)
		}
		if err != nil {
			return "", fmt.Errorf("create secret: %w", err)
		}
		if _, err := f.WriteString(s + "\n"); err != nil {
			f.Close()
			return "", fmt.Errorf("write secret: %w", err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return "", fmt.Errorf("write secret: %w", err)
		}
		return s, f.Close()
	}
	if err != nil {
		return "", fmt.Errorf("read secret: %w", err)
	}
	// Windows has no mode bits (Perm is always 0666 there): the file is
	// private through the per-user ACL of %AppData%.
	if fi, err := os.Stat(path); err == nil && runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("secret file %s is readable by other users (mode %v): chmod 600 it", path, fi.Mode().Perm())
	}
	s := strings.TrimSpace(string(b))
	if len(s) < 32 {
		return "", fmt.Errorf("secret file %s is too short", path)
	}
	return s, nil
}

// guard enforces the host's access rules, in this order: the Host header
// names this host (against DNS rebinding); /api, /ws, /upstream and
// /metrics need the API token or the session cookie; state-changing
// requests and WebSocket upgrades carry this host's Origin or none.
type guard struct {
	token string
	// trust, when set, is told about each authenticated request, so its
	// connection is not counted as anonymous (see connLimiter).
	trust func(context.Context)

	mu         sync.Mutex
	sessionKey []byte
	revoked    chan struct{} // closed and replaced by revokeSessions
	cookieName string
	hosts      map[string]bool // allowed Host header values
	origins    map[string]bool // allowed Origin header values
	links      map[string]time.Time
	now        func() time.Time
	linkTTL    time.Duration
}

func newGuard(token string, sessionKey []byte) *guard {
	return &guard{token: token, sessionKey: sessionKey, revoked: make(chan struct{}),
		links: map[string]time.Time{}, now: time.Now, linkTTL: 15 * time.Minute}
}

// setAddr records the address the host listens on; Host and Origin are
// checked against it: its own IP (e.g. 127.0.0.2 or [::1]), 127.0.0.1 and
// localhost, with its port.
func (g *guard) setAddr(addr net.Addr) {
	ip, port, _ := net.SplitHostPort(addr.String())
	g.mu.Lock()
	defer g.mu.Unlock()
	g.cookieName = "synctray_session_" + port // cookies ignore ports: one name per host
	g.hosts = map[string]bool{}
	g.origins = map[string]bool{}
	for _, h := range []string{ip, "127.0.0.1", "localhost"} {
		hp := net.JoinHostPort(h, port)
		g.hosts[hp] = true
		g.origins["http://"+hp] = true
	}
}

func (g *guard) hostAllowed(host string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.hosts[strings.ToLower(host)]
}

func (g *guard) originAllowed(r *http.Request) bool {
	o, ok := r.Header["Origin"]
	if !ok {
		// Non-browser clients send none; browsers always send one on
		// cross-site requests, and Sec-Fetch-Site says where it came from.
		site := r.Header.Get("Sec-Fetch-Site")
		return site == "" || site == "same-origin" || site == "none"
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(o) == 1 && g.origins[strings.ToLower(o[0])]
}

// authorized reports whether r carries the API token or a valid session
// cookie. The scheme of the Authorization header is case-insensitive
// (RFC 7235); a header with another scheme or a wrong token is refused
// without looking at the cookie.
func (g *guard) authorized(r *http.Request) bool {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(strings.TrimSpace(h), " ")
		return ok && strings.EqualFold(scheme, "Bearer") &&
			subtle.ConstantTimeCompare([]byte(strings.TrimSpace(tok)), []byte(g.token)) == 1
	}
	v := g.sessionCookieValue(r)
	return v != "" && g.validSession(v)
}

// sessionCookieValue returns r's session cookie, or "".
func (g *guard) sessionCookieValue(r *http.Request) string {
	g.mu.Lock()
	name := g.cookieName
	g.mu.Unlock()
	c, err := r.Cookie(name)
	if err != nil {
		return ""
	}
	return c.Value
}

// SessionLifetime is how long a browser session lasts after its login
// link was used; the cookie's Max-Age and the server both enforce it.
const SessionLifetime = 30 * 24 * time.Hour

// newSession returns a cookie value: a random id, its issue time (Unix
// seconds) and their HMAC under the session key, so sessions survive a
// restart without a session table and a new key revokes them all.
func (g *guard) newSession() string {
	id := make([]byte, 16)
	rand.Read(id)
	body := hex.EncodeToString(id) + "." + strconv.FormatInt(g.now().Unix(), 10)
	return body + "." + g.sign(body)
}

// validSession checks a cookie value's signature and age. A value from the
// future (beyond a minute of clock skew) or older than SessionLifetime is
// refused.
func (g *guard) validSession(v string) bool {
	i := strings.LastIndexByte(v, '.')
	if i < 0 {
		return false
	}
	body, sig := v[:i], v[i+1:]
	sid, issuedText, ok := strings.Cut(body, ".")
	if !ok || len(sid) != 32 {
		return false
	}
	issued, err := strconv.ParseInt(issuedText, 10, 64)
	if err != nil || !hmac.Equal([]byte(sig), []byte(g.sign(body))) {
		return false
	}
	age := g.now().Sub(time.Unix(issued, 0))
	return age >= -time.Minute && age <= SessionLifetime
}

func (g *guard) sign(body string) string {
	g.mu.Lock()
	key := g.sessionKey
	g.mu.Unlock()
	m := hmac.New(sha256.New, key)
	m.Write([]byte("synctray-session:" + body))
	return hex.EncodeToString(m.Sum(nil))
}

// revokeSessions makes key the session key: every cookie issued so far
// stops working, WebSockets opened with one are closed, and unused login
// links are dropped.
func (g *guard) revokeSessions(key []byte) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.sessionKey = key
	g.links = map[string]time.Time{}
	close(g.revoked)
	g.revoked = make(chan struct{})
}

// sessionsRevoked returns a channel that is closed at the next revocation.
func (g *guard) sessionsRevoked() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.revoked
}

// newLoginLink returns a one-time secret for /login?token=..., valid for linkTTL.
func (g *guard) newLoginLink() string {
	b := make([]byte, 24)
	rand.Read(b)
	s := hex.EncodeToString(b)
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	for k, exp := range g.links {
		if now.After(exp) {
			delete(g.links, k)
		}
	}
	g.links[s] = now.Add(g.linkTTL)
	return s
}

// useLoginLink consumes a one-time secret.
func (g *guard) useLoginLink(s string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	exp, ok := g.links[s]
	if !ok {
		return false
	}
	delete(g.links, s)
	return !g.now().After(exp)
}

func (g *guard) sessionCookie() *http.Cookie {
	g.mu.Lock()
	name := g.cookieName
	g.mu.Unlock()
	return &http.Cookie{
		Name: name, Value: g.newSession(), Path: "/",
		HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: int(SessionLifetime / time.Second),
	}
}

// wrap applies the rules around next. It answers a refused request
// before anything reads its body, and closes that connection.
func (g *guard) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !g.hostAllowed(r.Host) {
			closeUnreadBody(w, r)
			writeError(w, http.StatusForbidden, "forbidden_host", fmt.Sprintf("host %q is not this synctray host", r.Host))
			return
		}
		protected := strings.HasPrefix(r.URL.Path, "/api/") || r.URL.Path == "/api" || r.URL.Path == "/ws" || r.URL.Path == "/metrics" ||
			strings.HasPrefix(r.URL.Path, "/upstream/") || r.URL.Path == "/upstream"
		stateChanging := r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodOptions
		upgrade := strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
		if (stateChanging || upgrade) && !g.originAllowed(r) {
			closeUnreadBody(w, r)
			writeError(w, http.StatusForbidden, "forbidden_origin", "requests from other websites are not allowed")
			return
		}
		authorized := g.authorized(r)
		if protected && !authorized {
			closeUnreadBody(w, r)
			w.Header().Set("WWW-Authenticate", `Bearer realm="synctray"`)
			writeError(w, http.StatusUnauthorized, "unauthorized",
				"send the API token (Authorization: Bearer, from <data-dir>/api-token) or open the app with `synctray open`")
			return
		}
		if authorized && g.trust != nil {
			g.trust(r.Context())
		}
		next.ServeHTTP(w, r)
	})
}
