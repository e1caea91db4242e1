package localserver_test

import (
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"synctray/internal/testsupport"
	"synctray/localserver"
)

func TestSecurity(t *testing.T) {
	e := startHost(t, localserver.Config{})
	body := `{"type":"message","payload":{"text":"hi"}}`

	cases := []struct {
		name   string
		method string
		path   string
		body   string
		hdr    map[string]string
		want   int
		code   string
	}{
		{"a foreign Host is refused (DNS rebinding)", "GET", "/api/status", "", map[string]string{"Host": "evil.example:7717"}, 403, "forbidden_host"},
		{"a foreign Host is refused on shell files too", "GET", "/", "", map[string]string{"Host": "attacker.test"}, 403, "forbidden_host"},
		{"a foreign Origin on POST is refused", "POST", "/api/actions", body, map[string]string{"Origin": "https://evil.example", "Idempotency-Key": testsupport.NewKey()}, 403, "forbidden_origin"},
		{"Origin null on POST is refused", "POST", "/api/actions", body, map[string]string{"Origin": "null", "Idempotency-Key": testsupport.NewKey()}, 403, "forbidden_origin"},
		{"a cross-site fetch without Origin is refused", "POST", "/api/sync", "", map[string]string{"Sec-Fetch-Site": "cross-site"}, 403, "forbidden_origin"},
		{"a missing token is 401", "GET", "/api/actions", "", map[string]string{"Authorization": ""}, 401, "unauthorized"},
		{"a wrong token is 401", "GET", "/api/status", "", map[string]string{"Authorization": "Bearer " + strings.Repeat("0", 64)}, 401, "unauthorized"},
		{"a non-bearer scheme is 401", "GET", "/api/status", "", map[string]string{"Authorization": "Basic Zm9vOmJhcg=="}, 401, "unauthorized"},
		{"/ws without token is 401", "GET", "/ws", "", map[string]string{"Authorization": ""}, 401, "unauthorized"},
		{"an oversize body is 413", "POST", "/api/actions", `{"type":"m","payload":"` + strings.Repeat("x", 1<<20) + `"}`, map[string]string{"Idempotency-Key": testsupport.NewKey()}, 413, "body_too_large"},
		{"an oversize payload is 413", "POST", "/api/actions", `{"type":"m","payload":"` + strings.Repeat("x", 300<<10) + `"}`, map[string]string{"Idempotency-Key": testsupport.NewKey()}, 413, "payload_too_large"},
		{"malformed JSON is 400", "POST", "/api/actions", `{"type":"m","payload":`, map[string]string{"Idempotency-Key": testsupport.NewKey()}, 400, "bad_json"},
		{"a wrong type is 400", "POST", "/api/actions", `{"type":5,"payload":{}}`, map[string]string{"Idempotency-Key": testsupport.NewKey()}, 400, "bad_json"},
		{"an unknown field is 400", "POST", "/api/actions", `{"type":"m","payload":{},"extra":1}`, map[string]string{"Idempotency-Key": testsupport.NewKey()}, 400, "bad_json"},
		{"trailing data is 400", "POST", "/api/actions", `{"type":"m","payload":{}} {}`, map[string]string{"Idempotency-Key": testsupport.NewKey()}, 400, "bad_json"},
		{"a missing payload is 400", "POST", "/api/actions", `{"type":"m"}`, map[string]string{"Idempotency-Key": testsupport.NewKey()}, 400, "invalid_action"},
		{"a missing Idempotency-Key is 400", "POST", "/api/actions", body, nil, 400, "missing_idempotency_key"},
		{"a non-UUID Idempotency-Key is 400", "POST", "/api/actions", body, map[string]string{"Idempotency-Key": "abc"}, 400, "invalid_action"},
		{"an unknown state filter is 400", "GET", "/api/actions?state=lost", "", nil, 400, "invalid_state"},
		{"a bad id is 400", "GET", "/api/actions/x", "", nil, 400, "invalid_id"},
		{"an unknown id is 404", "GET", "/api/actions/999999", "", nil, 404, "not_found"},
		{"an unknown endpoint is 404", "GET", "/api/nope", "", nil, 404, "not_found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var b any
			if c.body != "" {
				b = c.body
			}
			resp, data := e.req(c.method, c.path, b, c.hdr)
			if resp.StatusCode != c.want {
				t.Fatalf("status = %d, want %d (%s)", resp.StatusCode, c.want, data)
			}
			var eb struct {
				Error localserver.ErrorBody `json:"error"`
			}
			mustUnmarshal(t, data, &eb)
			if eb.Error.Code != c.code || eb.Error.Message == "" {
				t.Fatalf("error = %+v, want code %q with a message", eb.Error, c.code)
			}
		})
	}

	t.Run("the same Origin and no Origin are accepted", func(t *testing.T) {
		for _, o := range []string{e.url, strings.Replace(e.url, "127.0.0.1", "localhost", 1), ""} {
			resp, data := e.req("POST", "/api/actions", body, map[string]string{"Origin": o, "Idempotency-Key": testsupport.NewKey()})
			if resp.StatusCode != 202 {
				t.Fatalf("Origin %q: status = %d (%s), want 202", o, resp.StatusCode, data)
			}
		}
	})

	t.Run("a WebSocket upgrade from a foreign Origin is refused", func(t *testing.T) {
		h := http.Header{"Authorization": {"Bearer " + e.token}, "Origin": {"https://evil.example"}}
		_, resp, err := websocket.DefaultDialer.Dial(strings.Replace(e.url, "http", "ws", 1)+"/ws", h)
		if err == nil || resp == nil || resp.StatusCode != 403 {
			t.Fatalf("dial: err=%v resp=%v, want 403", err, resp)
		}
		h.Set("Origin", e.url)
		c, _, err := websocket.DefaultDialer.Dial(strings.Replace(e.url, "http", "ws", 1)+"/ws", h)
		if err != nil {
			t.Fatalf("same-origin dial: %v", err)
		}
		c.Close()
	})

	t.Run("shell files need no token, so an installed app starts offline", func(t *testing.T) {
		resp, data := e.req("GET", "/", nil, map[string]string{"Authorization": ""})
		if resp.StatusCode != 200 || !strings.Contains(string(data), "<html") {
			t.Fatalf("GET / = %d, want the shell", resp.StatusCode)
		}
		if resp.Header.Get("X-Frame-Options") != "DENY" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("security headers missing: %v", resp.Header)
		}
	})

	t.Run("a one-time login link sets a strict HttpOnly session cookie, once", func(t *testing.T) {
		link := e.host.LoginURL()
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := c.Get(link)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("login = %d, want 303", resp.StatusCode)
		}
		ck := resp.Cookies()
		if len(ck) != 1 || !ck[0].HttpOnly || ck[0].SameSite != http.SameSiteStrictMode {
			t.Fatalf("cookie = %+v, want one HttpOnly SameSite=Strict cookie", ck)
		}
		resp, err = c.Get(e.url + "/api/status")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status with cookie = %d, want 200", resp.StatusCode)
		}
		// A forged cookie is worth nothing.
		u, _ := url.Parse(e.url)
		jar.SetCookies(u, []*http.Cookie{{Name: ck[0].Name, Value: strings.Repeat("a", 32) + ".forged"}})
		resp, _ = c.Get(e.url + "/api/status")
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Fatalf("status with forged cookie = %d, want 401", resp.StatusCode)
		}
		// The link works once.
		resp, err = http.Get(link)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 403 {
			t.Fatalf("second use of the link = %d, want 403", resp.StatusCode)
		}
	})

	t.Run("the API token file is private", func(t *testing.T) {
		testsupport.CheckPrivate(t, filepath.Join(e.dataDir, "api-token"))
	})

	t.Run("a token file readable by others is refused", func(t *testing.T) {
		testsupport.UnixModes(t) // Windows sets the ACL again instead (private.Secure)
		p := filepath.Join(t.TempDir(), "tok")
		os.WriteFile(p, []byte(strings.Repeat("ab", 32)), 0o644)
		if _, err := localserver.LoadOrCreateSecret(p); err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Fatalf("err = %v, want a refusal that says chmod 600", err)
		}
	})

	t.Run("it listens on loopback only", func(t *testing.T) {
		if _, err := localserver.Listen("0.0.0.0:0"); err == nil || !strings.Contains(err.Error(), "loopback") {
			t.Fatalf("Listen(0.0.0.0) err = %v, want a loopback-only refusal", err)
		}
	})

	t.Run("a taken port says so clearly", func(t *testing.T) {
		_, err := localserver.Listen(strings.TrimPrefix(e.url, "http://"))
		if err == nil || !strings.Contains(err.Error(), "already running") {
			t.Fatalf("err = %v, want 'is synctray already running?'", err)
		}
	})
}
