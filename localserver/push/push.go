// Package push sends Web Push notifications (RFC 8030, encrypted per RFC
// 8291, signed with VAPID per RFC 8292) to the browsers that subscribed,
// using github.com/SherClockHolmes/webpush-go. It owns the host's VAPID
// keys, the subscriptions (SQLite), and the coalescing of bursts.
package push

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	webpush "github.com/SherClockHolmes/webpush-go"

	"synctray/internal/sqlitedb"
	"synctray/localserver/clock"
)

// Subscription is a browser's PushSubscription as JSON.
type Subscription = webpush.Subscription

// ErrInvalid marks a subscription the host cannot use.
var ErrInvalid = errors.New("invalid push subscription")

// Validate checks a subscription: an https endpoint (http only on
// loopback, for tests), a P-256 public key and a 16-byte auth secret.
func Validate(s Subscription) error {
	u, err := url.Parse(s.Endpoint)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%w: endpoint %q is not a URL", ErrInvalid, s.Endpoint)
	}
	if u.Scheme != "https" {
		host := u.Hostname()
		if ip := net.ParseIP(host); u.Scheme != "http" || (host != "localhost" && (ip == nil || !ip.IsLoopback())) {
			return fmt.Errorf("%w: endpoint must be https", ErrInvalid)
		}
	}
	if len(s.Endpoint) > 2048 {
		return fmt.Errorf("%w: endpoint is too long", ErrInvalid)
	}
	if b, err := decodeB64(s.Keys.P256dh); err != nil || len(b) != 65 || b[0] != 4 {
		return fmt.Errorf("%w: keys.p256dh must be an uncompressed P-256 point, base64url", ErrInvalid)
	}
	if b, err := decodeB64(s.Keys.Auth); err != nil || len(b) != 16 {
		return fmt.Errorf("%w: keys.auth must be 16 bytes, base64url", ErrInvalid)
	}
	return nil
}

func decodeB64(s string) ([]byte, error) {
	s = strings.TrimRight(s, "=")
	if b, err := base64.RawURLEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return base64.RawStdEncoding.DecodeString(s)
}

// Keys is the host's VAPID key pair (base64url, as webpush-go makes them).
type Keys struct {
	Public  string `json:"public"`
	Private string `json:"private"`
}

// LoadOrCreateKeys returns the VAPID keys kept in path (JSON, mode 0600),
// generating them once.
func LoadOrCreateKeys(path string) (Keys, error) {
	var k Keys
	b, err := os.ReadFile(path)
	if err == nil {
		if err := json.Unmarshal(b, &k); err != nil || k.Public == "" || k.Private == "" {
			return Keys{}, fmt.Errorf("read VAPID keys %s: not a key file (delete it to make new keys)", path)
		}
		return k, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return Keys{}, fmt.Errorf("read VAPID keys: %w", err)
	}
	k.Private, k.Public, err = webpush.GenerateVAPIDKeys()
	if err != nil {
		return Keys{}, fmt.Errorf("generate VAPID keys: %w", err)
	}
	b, _ = json.Marshal(k)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return LoadOrCreateKeys(path)
	}
	if err != nil {
		return Keys{}, fmt.Errorf("save VAPID keys: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return Keys{}, fmt.Errorf("save VAPID keys: %w", err)
	}
	return k, f.Close()
}

// Store keeps subscriptions in SQLite (push.db beside the outbox).
type Store struct{ db *sqlitedb.DB }

// storeMigrations is the subscription schema, versioned with PRAGMA
// user_version by sqlitedb.Open. Migration 1 is IF NOT EXISTS because
// push.db files made before versioning already hold the table.
var storeMigrations = []string{
	`CREATE TABLE IF NOT EXISTS subscriptions (
		endpoint TEXT PRIMARY KEY, p256dh TEXT NOT NULL, auth TEXT NOT NULL, created_at TEXT NOT NULL) STRICT`,
}

// OpenStore opens (creating, mode 0600) the subscription database at path.
func OpenStore(path string) (*Store, error) {
	db, err := sqlitedb.Open(context.Background(), path, sqlitedb.Options{Migrations: storeMigrations, Readers: 2})
	if err != nil {
		return nil, fmt.Errorf("open push store %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

// Close closes the store.
func (s *Store) Close() error { return s.db.Close() }

// Add stores (or replaces) a subscription. Errors: ErrInvalid.
func (s *Store) Add(ctx context.Context, sub Subscription) error {
	if err := Validate(sub); err != nil {
		return err
	}
	_, err := s.db.W.ExecContext(ctx, `INSERT INTO subscriptions(endpoint, p256dh, auth, created_at) VALUES (?,?,?,?)
		ON CONFLICT(endpoint) DO UPDATE SET p256dh=excluded.p256dh, auth=excluded.auth`,
		sub.Endpoint, sub.Keys.P256dh, sub.Keys.Auth, time.Now().UTC().Format(time.RFC3339))
	if err != nil {
		return fmt.Errorf("add subscription: %w", err)
	}
	return nil
}

// Remove deletes a subscription; it reports whether there was one.
func (s *Store) Remove(ctx context.Context, endpoint string) (bool, error) {
	res, err := s.db.W.ExecContext(ctx, `DELETE FROM subscriptions WHERE endpoint = ?`, endpoint)
	if err != nil {
		return false, fmt.Errorf("remove subscription: %w", err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// All returns every subscription.
func (s *Store) All(ctx context.Context) ([]Subscription, error) {
	rows, err := s.db.R.QueryContext(ctx, `SELECT endpoint, p256dh, auth FROM subscriptions ORDER BY created_at`)
	if err != nil {
		return nil, fmt.Errorf("list subscriptions: %w", err)
	}
	defer rows.Close()
	var out []Subscription
	for rows.Next() {
		var sub Subscription
		if err := rows.Scan(&sub.Endpoint, &sub.Keys.P256dh, &sub.Keys.Auth); err != nil {
			return nil, fmt.Errorf("list subscriptions: %w", err)
		}
		out = append(out, sub)
	}
	return out, rows.Err()
}

// Notification is what a push carries; the service worker shows Title and
// Body, replaces an earlier notification with the same Tag, and opens URL
// on click.
type Notification struct {
	Kind  string          `json:"kind"` // "message", "rejected", "synced"
	Title string          `json:"title"`
	Body  string          `json:"body"`
	Tag   string          `json:"tag"`
	URL   string          `json:"url"`
	Event json.RawMessage `json:"event,omitempty"` // the event itself, for open pages
	Count int             `json:"count"`           // how many events this one stands for
}

// Options configure a Sender. Zero values are the documented defaults.
type Options struct {
	// Subscriber is the VAPID "sub" contact: an https URL or an e-mail
	// address; "": https://github.com/synctray.
	Subscriber string
	// Coalesce is how long a burst is gathered into one push per kind; 0: 2s.
	Coalesce time.Duration
	// HTTP sends the requests; nil: a client with a 30 s timeout.
	HTTP   webpush.HTTPClient
	Logger *slog.Logger
	// Clock times the coalescing window; nil: the wall clock.
	Clock clock.Clock
}

// Sender sends notifications to every subscription, coalescing bursts.
type Sender struct {
	store *Store
	keys  Keys
	o     Options
	log   *slog.Logger

	mu      sync.Mutex
	pending map[string][]Notification // by kind
	wake    chan struct{}
}

// NewSender returns a sender; call Run to start it.
func NewSender(store *Store, keys Keys, o Options) *Sender {
	if o.Subscriber == "" {
		o.Subscriber = "https://github.com/synctray"
	}
	if o.Coalesce <= 0 {
		o.Coalesce = 2 * time.Second
	}
	if o.HTTP == nil {
		o.HTTP = &http.Client{Timeout: 30 * time.Second}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	return &Sender{store: store, keys: keys, o: o, log: o.Logger, pending: map[string][]Notification{}, wake: make(chan struct{}, 1)}
}

// Notify queues n; it never blocks. Notifications of one kind queued
// within the coalescing window go out as one.
func (s *Sender) Notify(n Notification) {
	s.mu.Lock()
	if len(s.pending[n.Kind]) < 1000 {
		s.pending[n.Kind] = append(s.pending[n.Kind], n)
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run sends queued notifications until ctx is cancelled.
func (s *Sender) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		}
		t := s.o.Clock.NewTimer(s.o.Coalesce)
		select { // gather the burst
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		}
		s.mu.Lock()
		batch := s.pending
		s.pending = map[string][]Notification{}
		s.mu.Unlock()
		for _, ns := range batch {
			s.Send(ctx, Coalesce(ns))
		}
	}
}

// Coalesce turns a burst of notifications of one kind into one.
func Coalesce(ns []Notification) Notification {
	n := ns[len(ns)-1]
	total := 0
	for _, x := range ns {
		total += max(1, x.Count)
	}
	n.Count = total
	if total > 1 {
		switch n.Kind {
		case "message":
			n.Title, n.Body = fmt.Sprintf("%d new messages", total), "Latest: "+n.Body
		case "rejected":
			n.Title = fmt.Sprintf("Upstream rejected %d actions", total)
		}
	}
	return n
}

// Send pushes n to every subscription now. Subscriptions the push service
// says are gone (404, 410) are removed. It returns how many pushes were
// accepted.
func (s *Sender) Send(ctx context.Context, n Notification) int {
	subs, err := s.store.All(ctx)
	if err != nil {
		s.log.Error("push", "err", err)
		return 0
	}
	body, _ := json.Marshal(n)
	ok := 0
	for i := range subs {
		sub := subs[i]
		resp, err := webpush.SendNotificationWithContext(ctx, body, &sub, &webpush.Options{
			HTTPClient: s.o.HTTP, Subscriber: s.o.Subscriber, TTL: 24 * 3600, Topic: topic(n.Tag),
			VAPIDPublicKey: s.keys.Public, VAPIDPrivateKey: s.keys.Private, Urgency: webpush.UrgencyNormal,
		})
		if err != nil {
			s.log.Warn("push not delivered", "endpoint", origin(sub.Endpoint), "err", err)
			continue
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
			if _, err := s.store.Remove(ctx, sub.Endpoint); err != nil {
				s.log.Error("remove expired subscription", "err", err)
			} else {
				s.log.Info("push subscription expired; removed", "endpoint", origin(sub.Endpoint), "status", resp.StatusCode)
			}
		case resp.StatusCode/100 == 2:
			ok++
		default:
			s.log.Warn("push refused", "endpoint", origin(sub.Endpoint), "status", resp.StatusCode)
		}
	}
	return ok
}

// topic makes a Topic header value (URL-safe base64 alphabet, at most 32 chars).
func topic(tag string) string {
	var b strings.Builder
	for _, r := range tag {
		if b.Len() == 32 {
			break
		}
		if r < 128 && (r == '-' || r == '_' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9') {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// origin shortens an endpoint for logs: its capability URL path is a secret.
func origin(endpoint string) string {
	if u, err := url.Parse(endpoint); err == nil {
		return u.Scheme + "://" + u.Host
	}
	return "?"
}
