package push_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"synctray/internal/testsupport"
	"synctray/localserver/push"
)

// browser is a fake user agent: it holds a subscription's private keys.
type browser struct {
	priv *ecdh.PrivateKey
	auth []byte
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	priv, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	auth := make([]byte, 16)
	rand.Read(auth)
	return &browser{priv: priv, auth: auth}
}

func (b *browser) subscription(endpoint string) push.Subscription {
	return push.Subscription{Endpoint: endpoint, Keys: struct {
		Auth   string `json:"auth"`
		P256dh string `json:"p256dh"`
	}{
		Auth:   base64.RawURLEncoding.EncodeToString(b.auth),
		P256dh: base64.RawURLEncoding.EncodeToString(b.priv.PublicKey().Bytes()),
	}}
}

// decrypt undoes RFC 8291 (aes128gcm, RFC 8188) with the browser's keys.
func (b *browser) decrypt(t *testing.T, body []byte) []byte {
	t.Helper()
	if len(body) < 21 {
		t.Fatalf("body of %d bytes is too short for an aes128gcm header", len(body))
	}
	salt, rs, idlen := body[:16], binary.BigEndian.Uint32(body[16:20]), int(body[20])
	if idlen != 65 {
		t.Fatalf("keyid length = %d, want 65 (the sender's public key)", idlen)
	}
	asPub, err := ecdh.P256().NewPublicKey(body[21 : 21+idlen])
	if err != nil {
		t.Fatalf("sender key: %v", err)
	}
	records := body[21+idlen:]
	if uint32(len(records)) > rs {
		t.Fatalf("ciphertext of %d bytes spans more than one %d-byte record", len(records), rs)
	}
	secret, err := b.priv.ECDH(asPub)
	if err != nil {
		t.Fatal(err)
	}
	keyInfo := "WebPush: info\x00" + string(b.priv.PublicKey().Bytes()) + string(asPub.Bytes())
	ikm, err := hkdf.Key(sha256.New, secret, b.auth, keyInfo, 32)
	if err != nil {
		t.Fatal(err)
	}
	cek, _ := hkdf.Key(sha256.New, ikm, salt, "Content-Encoding: aes128gcm\x00", 16)
	nonce, _ := hkdf.Key(sha256.New, ikm, salt, "Content-Encoding: nonce\x00", 12)
	block, _ := aes.NewCipher(cek)
	gcm, _ := cipher.NewGCM(block)
	plain, err := gcm.Open(nil, nonce, records, nil)
	if err != nil {
		t.Fatalf("decrypt: %v", err)
	}
	plain = bytes.TrimRight(plain, "\x00")
	if len(plain) == 0 || plain[len(plain)-1] != 2 {
		t.Fatal("last record lacks the 0x02 delimiter")
	}
	return plain[:len(plain)-1]
}

// pushService is a fake push service that records what it receives.
type pushService struct {
	mu     sync.Mutex
	status int
	got    []*http.Request
	bodies [][]byte
}

func (p *pushService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.got = append(p.got, r)
	p.bodies = append(p.bodies, b)
	w.WriteHeader(p.status)
}

// verifyVAPID checks the Authorization header: an ES256 JWT signed by the
// key in k=, for the push service's origin, not expired, with a contact.
func verifyVAPID(t *testing.T, header, aud, wantKey string) {
	t.Helper()
	rest, ok := strings.CutPrefix(header, "vapid t=")
	if !ok {
		t.Fatalf("Authorization = %q, want vapid t=..., k=...", header)
	}
	jwt, k, ok := strings.Cut(rest, ", k=")
	if !ok || k != wantKey {
		t.Fatalf("k = %q, want the host's public key %q", k, wantKey)
	}
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("JWT has %d parts", len(parts))
	}
	var hdr struct{ Alg, Typ string }
	h, _ := base64.RawURLEncoding.DecodeString(parts[0])
	json.Unmarshal(h, &hdr)
	if hdr.Alg != "ES256" {
		t.Fatalf("alg = %q, want ES256", hdr.Alg)
	}
	var claims struct {
		Aud string `json:"aud"`
		Exp int64  `json:"exp"`
		Sub string `json:"sub"`
	}
	c, _ := base64.RawURLEncoding.DecodeString(parts[1])
	if err := json.Unmarshal(c, &claims); err != nil {
		t.Fatal(err)
	}
	if claims.Aud != aud || claims.Exp < time.Now().Unix() || claims.Exp > time.Now().Add(24*time.Hour).Unix() ||
		!(strings.HasPrefix(claims.Sub, "https://") || strings.HasPrefix(claims.Sub, "mailto:")) {
		t.Fatalf("claims = %+v, want aud %s, exp within 24 h, a contact", claims, aud)
	}
	pubBytes, _ := base64.RawURLEncoding.DecodeString(k)
	pub, err := ecdsa.ParseUncompressedPublicKey(ecdhCurve(), pubBytes)
	if err != nil {
		t.Fatalf("public key: %v", err)
	}
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	if len(sig) != 64 {
		t.Fatalf("signature of %d bytes, want 64", len(sig))
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
	if !ecdsa.Verify(pub, digest[:], r, s) {
		t.Fatal("VAPID JWT signature does not verify with k")
	}
}

func setup(t *testing.T, status int) (*push.Store, *push.Sender, push.Keys, *pushService, *httptest.Server) {
	t.Helper()
	dir := t.TempDir()
	keys, err := push.LoadOrCreateKeys(filepath.Join(dir, "vapid.json"))
	if err != nil {
		t.Fatal(err)
	}
	store, err := push.OpenStore(filepath.Join(dir, "push.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ps := &pushService{status: status}
	ts := httptest.NewServer(ps)
	t.Cleanup(ts.Close)
	return store, push.NewSender(store, keys, push.Options{Coalesce: 10 * time.Millisecond}), keys, ps, ts
}

func TestWebPush(t *testing.T) {
	t.Run("a push arrives as an RFC 8291 aes128gcm body with a valid VAPID JWT", func(t *testing.T) {
		store, sender, keys, ps, ts := setup(t, http.StatusCreated)
		b := newBrowser(t)
		if err := store.Add(context.Background(), b.subscription(ts.URL+"/push/abc")); err != nil {
			t.Fatal(err)
		}
		n := push.Notification{Kind: "message", Title: "New message", Body: "hello there", Tag: "msg", URL: "/", Count: 1}
		if got := sender.Send(context.Background(), n); got != 1 {
			t.Fatalf("Send delivered %d, want 1", got)
		}
		r := ps.got[0]
		if r.URL.Path != "/push/abc" || r.Header.Get("Content-Encoding") != "aes128gcm" || r.Header.Get("TTL") == "" {
			t.Fatalf("request %s %v, want POST /push/abc with aes128gcm and TTL", r.URL.Path, r.Header)
		}
		verifyVAPID(t, r.Header.Get("Authorization"), ts.URL, keys.Public)
		var got push.Notification
		if err := json.Unmarshal(b.decrypt(t, ps.bodies[0]), &got); err != nil {
			t.Fatal(err)
		}
		if got.Title != n.Title || got.Body != n.Body || got.Tag != n.Tag || got.URL != n.URL {
			t.Fatalf("decrypted %+v, want %+v", got, n)
		}
	})

	t.Run("an expired subscription (410) is removed", func(t *testing.T) {
		store, sender, _, _, ts := setup(t, http.StatusGone)
		store.Add(context.Background(), newBrowser(t).subscription(ts.URL+"/gone"))
		if got := sender.Send(context.Background(), push.Notification{Kind: "message", Title: "x"}); got != 0 {
			t.Fatalf("delivered %d, want 0", got)
		}
		if subs, _ := store.All(context.Background()); len(subs) != 0 {
			t.Fatalf("subscriptions = %d, want the expired one removed", len(subs))
		}
	})

	t.Run("a burst is coalesced into one push", func(t *testing.T) {
		store, sender, _, ps, ts := setup(t, http.StatusCreated)
		b := newBrowser(t)
		store.Add(context.Background(), b.subscription(ts.URL+"/p"))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { sender.Run(ctx); close(done) }()
		for i := 0; i < 5; i++ {
			sender.Notify(push.Notification{Kind: "message", Title: "New message", Body: "m", Count: 1})
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			ps.mu.Lock()
			n := len(ps.bodies)
			ps.mu.Unlock()
			if n >= 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("no push sent")
			}
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(50 * time.Millisecond)
		cancel()
		<-done
		ps.mu.Lock()
		defer ps.mu.Unlock()
		if len(ps.bodies) != 1 {
			t.Fatalf("sent %d pushes, want 1 for the burst", len(ps.bodies))
		}
		var got push.Notification
		json.Unmarshal(b.decrypt(t, ps.bodies[0]), &got)
		if got.Count != 5 || got.Title != "5 new messages" {
			t.Fatalf("coalesced = %+v, want 5 new messages", got)
		}
	})

	t.Run("bad subscriptions are refused", func(t *testing.T) {
		store, _, _, _, _ := setup(t, 201)
		good := newBrowser(t).subscription("https://push.example/x")
		for name, mod := range map[string]func(*push.Subscription){
			"http endpoint off loopback": func(s *push.Subscription) { s.Endpoint = "http://push.example/x" },
			"not a URL":                  func(s *push.Subscription) { s.Endpoint = "::" },
			"short auth":                 func(s *push.Subscription) { s.Keys.Auth = "AAAA" },
			"bad p256dh":                 func(s *push.Subscription) { s.Keys.P256dh = "nope" },
		} {
			s := good
			mod(&s)
			if err := store.Add(context.Background(), s); err == nil {
				t.Errorf("%s: accepted", name)
			}
		}
		if err := store.Add(context.Background(), good); err != nil {
			t.Fatalf("good subscription refused: %v", err)
		}
	})

	t.Run("VAPID keys are made once and kept private", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "vapid.json")
		k1, err := push.LoadOrCreateKeys(p)
		if err != nil {
			t.Fatal(err)
		}
		k2, _ := push.LoadOrCreateKeys(p)
		if k1 != k2 {
			t.Fatal("keys changed between loads")
		}
		testsupport.CheckPrivate(t, p)
	})
}
