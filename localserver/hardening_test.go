package localserver_test

import (
	"bufio"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"synctray/assets"
	"synctray/internal/testsupport"
	"synctray/localserver"
)

// rawRequest sends head and the first bytes of a body on a raw connection
// and never sends the rest; it returns the answer and whether the host then
// closed the connection. The 5 s deadline is a failure bound only.
func rawRequest(t *testing.T, e *env, head string) (*http.Response, bool) {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(e.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, head+`{"type":"message","payload":"`); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer while the body is still coming: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	_, err = br.ReadByte()
	return resp, err == io.EOF
}

func TestRefusedRequestsAreAnsweredWithoutReadingTheirBody(t *testing.T) {
	e := startHost(t, localserver.Config{WorkOffline: true})
	host := strings.TrimPrefix(e.url, "http://")
	// 200 KB is under the 256 KiB the server would otherwise read first.
	cases := []struct {
		name, head string
		want       int
	}{
		{"an unauthenticated POST", "POST /api/actions HTTP/1.1\r\nHost: " + host + "\r\nContent-Length: 200000\r\n\r\n", 401},
		{"a POST with a foreign Host", "POST /api/actions HTTP/1.1\r\nHost: evil.example\r\nContent-Length: 200000\r\n\r\n", 403},
		{"a POST from a foreign Origin", "POST /api/actions HTTP/1.1\r\nHost: " + host + "\r\nOrigin: https://evil.example\r\nContent-Length: 200000\r\n\r\n", 403},
		{"a POST to a shell file", "POST / HTTP/1.1\r\nHost: " + host + "\r\nContent-Length: 200000\r\n\r\n", 405},
	}
	for _, c := range cases {
		t.Run(c.name+" is answered and its connection closed", func(t *testing.T) {
			resp, closed := rawRequest(t, e, c.head)
			if resp.StatusCode != c.want {
				t.Fatalf("status = %d, want %d", resp.StatusCode, c.want)
			}
			if !closed {
				t.Fatal("the host kept the connection open to read the rest of the body")
			}
		})
	}
}

func TestASlowBodyIsCutOffAtTheBodyTimeout(t *testing.T) {
	e := startHost(t, localserver.Config{WorkOffline: true, BodyTimeout: 200 * time.Millisecond})
	head := "POST /api/actions HTTP/1.1\r\nHost: " + strings.TrimPrefix(e.url, "http://") +
		"\r\nAuthorization: Bearer " + e.token + "\r\nIdempotency-Key: " + testsupport.NewKey() + "\r\nContent-Length: 5000\r\n\r\n"
	resp, closed := rawRequest(t, e, head)
	if resp.StatusCode != http.StatusRequestTimeout || !closed {
		t.Fatalf("status = %d, closed = %v; want 408 and the connection closed", resp.StatusCode, closed)
	}
	// A request whose body arrives in time is unaffected, and so is the
	// rest of the request after its body (the deadline is lifted).
	if code, _ := e.post(testsupport.NewKey(), "message", `{"text":"in time"}`); code != 202 {
		t.Fatalf("enqueue = %d, want 202", code)
	}
}

func TestEveryAnswerHasAContentSecurityPolicy(t *testing.T) {
	e := startHost(t, localserver.Config{WorkOffline: true})
	port := e.url[strings.LastIndexByte(e.url, ':')+1:]
	want := map[string]string{
		"default-src":     "'self'",
		"script-src":      "'self'",
		"connect-src":     "'self' ws://127.0.0.1:" + port + " ws://localhost:" + port,
		"object-src":      "'none'",
		"base-uri":        "'none'",
		"frame-ancestors": "'none'",
	}
	for _, p := range []struct {
		path   string
		hdr    map[string]string
		status int
	}{
		{"/", nil, 200},
		{"/sw.js", nil, 200},
		{"/app.js", nil, 200},
		{"/icons/icon-192.png", nil, 200},
		{"/api/nope", nil, 404},
		{"/api/status", map[string]string{"Authorization": ""}, 401},
		{"/healthz", nil, 200},
	} {
		resp, _ := e.req("GET", p.path, nil, p.hdr)
		if resp.StatusCode != p.status {
			t.Fatalf("GET %s = %d, want %d", p.path, resp.StatusCode, p.status)
		}
		got := map[string]string{}
		for _, d := range strings.Split(resp.Header.Get("Content-Security-Policy"), ";") {
			name, value, _ := strings.Cut(strings.TrimSpace(d), " ")
			got[name] = value
		}
		for name, v := range want {
			if got[name] != v {
				t.Errorf("GET %s: CSP %s = %q, want %q (header %q)", p.path, name, got[name], v, resp.Header.Get("Content-Security-Policy"))
			}
		}
	}
}

// The policy forbids inline script and style: the app must not need them.
func TestTheAppShellHasNoInlineScriptOrStyle(t *testing.T) {
	tag := regexp.MustCompile(`(?is)<(script|style)\b[^>]*>`)
	attr := regexp.MustCompile(`(?i)\s(on[a-z]+|style)\s*=`)
	err := fs.WalkDir(assets.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".html") {
			return err
		}
		b, err := fs.ReadFile(assets.FS, p)
		if err != nil {
			return err
		}
		for _, m := range tag.FindAllString(string(b), -1) {
			if !strings.Contains(strings.ToLower(m), "src=") {
				t.Errorf("%s: inline %s", p, m)
			}
		}
		if m := attr.FindString(string(b)); m != "" {
			t.Errorf("%s: inline attribute %q", p, m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestDirectoriesAreNotListed(t *testing.T) {
	e := startHost(t, localserver.Config{WorkOffline: true})
	for _, p := range []string{"/icons/", "/icons", "/icons/icon-192.png/", "/nope.js"} {
		resp, data := e.req("GET", p, nil, nil)
		if resp.StatusCode != 404 {
			t.Errorf("GET %s = %d, want 404 (%s)", p, resp.StatusCode, data)
		}
		if strings.Contains(string(data), "<a href") {
			t.Errorf("GET %s lists the directory: %s", p, data)
		}
	}
	for p, typ := range map[string]string{"/icons/icon-192.png": "image/png", "/style.css": "text/css", "/app.js": "text/javascript"} {
		resp, _ := e.req("GET", p, nil, nil)
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), typ) {
			t.Errorf("GET %s = %d %q, want 200 %s", p, resp.StatusCode, resp.Header.Get("Content-Type"), typ)
		}
	}
}

func TestTheAuthorizationSchemeIsCaseInsensitive(t *testing.T) {
	e := startHost(t, localserver.Config{WorkOffline: true})
	for h, want := range map[string]int{
		"Bearer " + e.token:     200,
		"bearer " + e.token:     200,
		"BEARER " + e.token:     200,
		"bEaReR  " + e.token:    200,
		"Basic " + e.token:      401,
		"Token " + e.token:      401,
		"Bearer" + e.token:      401,
		"Bearer":                401,
		"Bearerx " + e.token:    401,
		"bearer " + e.token[1:]: 401,
	} {
		resp, _ := e.req("GET", "/api/status", nil, map[string]string{"Authorization": h})
		if resp.StatusCode != want {
			t.Errorf("Authorization %q: status = %d, want %d", h[:min(len(h), 12)]+"…", resp.StatusCode, want)
		}
	}
}

func TestInvalidUTF8IsRefused(t *testing.T) {
	e := startHost(t, localserver.Config{WorkOffline: true})
	t.Run("in a single action's payload or type", func(t *testing.T) {
		for _, body := range []string{
			"{\"type\":\"message\",\"payload\":{\"text\":\"caf\xe9\"}}",
			"{\"type\":\"mess\xffage\",\"payload\":{\"text\":\"hi\"}}",
		} {
			resp, data := e.req("POST", "/api/actions", body, map[string]string{"Idempotency-Key": testsupport.NewKey()})
			if resp.StatusCode != 400 || !strings.Contains(string(data), "UTF-8") {
				t.Errorf("%q: status = %d %s, want 400 naming UTF-8", body, resp.StatusCode, data)
			}
		}
	})
	t.Run("in a batch, action by action", func(t *testing.T) {
		good, badPayload, badType := testsupport.NewKey(), testsupport.NewKey(), testsupport.NewKey()
		body := `{"actions":[` +
			`{"key":"` + good + `","type":"message","payload":{"text":"ok"}},` +
			`{"key":"` + badPayload + "\",\"type\":\"message\",\"payload\":{\"text\":\"caf\xe9\"}}," +
			`{"key":"` + badType + "\",\"type\":\"m\xff\",\"payload\":{\"text\":\"x\"}}]}"
		resp, data := e.req("POST", "/api/actions/batch", body, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("batch = %d %s, want 200 with per-action results", resp.StatusCode, data)
		}
		var out struct {
			Results []localserver.BatchResult `json:"results"`
		}
		mustUnmarshal(t, data, &out)
		if len(out.Results) != 3 {
			t.Fatalf("results = %+v, want 3", out.Results)
		}
		if r := out.Results[0]; r.Key != good || r.Status != 201 {
			t.Errorf("valid action: %+v, want 201", r)
		}
		for i, k := range []string{badPayload, badType} {
			if r := out.Results[i+1]; r.Key != k || r.Status != 400 || r.Error == nil || !strings.Contains(r.Error.Message, "UTF-8") {
				t.Errorf("action %d: %+v, want 400 naming UTF-8", i+1, r)
			}
		}
		if st := e.status(); st.Counts["queued"] != 1 {
			t.Errorf("queued = %d, want only the valid action", st.Counts["queued"])
		}
	})
}

// signIn uses a one-time login link and returns a client with its cookie.
func signIn(t *testing.T, e *env) (*http.Client, *http.Cookie) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(e.host.LoginURL())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	ck := resp.Cookies()
	if resp.StatusCode != http.StatusSeeOther || len(ck) != 1 {
		t.Fatalf("login = %d with cookies %v, want 303 and one cookie", resp.StatusCode, ck)
	}
	return c, ck[0]
}

func statusWith(t *testing.T, c *http.Client, e *env) int {
	t.Helper()
	resp, err := c.Get(e.url + "/api/status")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestSessionsCanBeRevoked(t *testing.T) {
	e := startHost(t, localserver.Config{WorkOffline: true})
	browser, ck := signIn(t, e)
	if ck.MaxAge != 30*24*3600 {
		t.Errorf("cookie Max-Age = %d, want 30 days", ck.MaxAge)
	}
	if code := statusWith(t, browser, e); code != 200 {
		t.Fatalf("status with the cookie = %d, want 200", code)
	}
	wsURL := strings.Replace(e.url, "http", "ws", 1) + "/ws"
	byCookie, _, err := websocket.DefaultDialer.Dial(wsURL, http.Header{"Cookie": {ck.Name + "=" + ck.Value}})
	if err != nil {
		t.Fatalf("dial /ws with the cookie: %v", err)
	}
	defer byCookie.Close()
	byToken := dialWS(t, e)
	testsupport.WaitFor(t, "two subscriptions", func() bool { return e.host.Hub().Subscribers() == 2 })
	unused := e.host.LoginURL()
	keyBefore, _ := os.ReadFile(filepath.Join(e.dataDir, "session-key"))

	resp, data := e.req("POST", "/api/sessions/revoke", nil, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("revoke = %d %s, want 200", resp.StatusCode, data)
	}

	if code := statusWith(t, browser, e); code != 401 {
		t.Errorf("status with the revoked cookie = %d, want 401", code)
	}
	byCookie.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, _, err := byCookie.ReadMessage(); err != nil {
			if !websocket.IsCloseError(err, websocket.ClosePolicyViolation) {
				t.Errorf("the cookie's WebSocket ended with %v, want a policy-violation close", err)
			}
			break
		}
	}
	testsupport.WaitFor(t, "the cookie's subscription to end", func() bool { return e.host.Hub().Subscribers() == 1 })
	byToken.SetWriteDeadline(time.Now().Add(time.Second))
	if err := byToken.WriteControl(websocket.PingMessage, nil, time.Now().Add(time.Second)); err != nil {
		t.Errorf("the token's WebSocket was closed too: %v", err)
	}
	if resp, err := http.Get(unused); err != nil || resp.StatusCode != 403 {
		t.Errorf("a login link made before the revocation: %v %v, want 403", err, resp)
	}

	keyAfter, _ := os.ReadFile(filepath.Join(e.dataDir, "session-key"))
	if string(keyAfter) == string(keyBefore) || len(strings.TrimSpace(string(keyAfter))) != 64 {
		t.Errorf("session-key after revoke: changed=%v len=%d; want a new key",
			string(keyAfter) != string(keyBefore), len(keyAfter))
	}
	testsupport.CheckPrivate(t, filepath.Join(e.dataDir, "session-key"))
	entries, _ := os.ReadDir(e.dataDir)
	for _, en := range entries {
		if strings.HasPrefix(en.Name(), ".session-key") {
			t.Errorf("temporary file %s left behind", en.Name())
		}
	}

	// A new sign-in works, and a restart keeps the old cookie out.
	fresh, _ := signIn(t, e)
	e.restart()
	if code := statusWith(t, browser, e); code != 401 {
		t.Errorf("after a restart, status with the revoked cookie = %d, want 401", code)
	}
	if code := statusWith(t, fresh, e); code != 200 {
		t.Errorf("after a restart, status with a cookie from after the revocation = %d, want 200", code)
	}
}

func TestRevokeNeedsAuthorization(t *testing.T) {
	e := startHost(t, localserver.Config{WorkOffline: true})
	resp, _ := e.req("POST", "/api/sessions/revoke", nil, map[string]string{"Authorization": ""})
	if resp.StatusCode != 401 {
		t.Fatalf("revoke without a token = %d, want 401", resp.StatusCode)
	}
}
