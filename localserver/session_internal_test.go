package localserver

import (
	"strings"
	"testing"
	"time"
)

func TestSessionCookiesExpireAfter30Days(t *testing.T) {
	g := newGuard(strings.Repeat("t", 64), []byte(strings.Repeat("k", 64)))
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	now := t0
	g.now = func() time.Time { return now }
	v := g.newSession()

	for _, c := range []struct {
		at   time.Time
		want bool
	}{
		{t0, true},
		{t0.Add(29 * 24 * time.Hour), true},
		{t0.Add(SessionLifetime), true},
		{t0.Add(SessionLifetime + time.Second), false},
		{t0.Add(365 * 24 * time.Hour), false},
		{t0.Add(-2 * time.Minute), false}, // issued "in the future"
	} {
		now = c.at
		if got := g.validSession(v); got != c.want {
			t.Errorf("a cookie issued at %v, checked at %v: valid = %v, want %v", t0, c.at, got, c.want)
		}
	}

	now = t0
	sid, rest, _ := strings.Cut(v, ".")
	_, sig, _ := strings.Cut(rest, ".")
	forgedTime := sid + "." + "9999999999" + "." + sig
	oldFormat := sid + "." + g.sign(sid)
	for name, bad := range map[string]string{"a changed issue time": forgedTime, "the old format without an issue time": oldFormat, "garbage": "x.y.z"} {
		if g.validSession(bad) {
			t.Errorf("%s is accepted", name)
		}
	}

	g.revokeSessions([]byte(strings.Repeat("n", 64)))
	if g.validSession(v) {
		t.Error("a cookie signed with the old key is accepted after revocation")
	}
}
