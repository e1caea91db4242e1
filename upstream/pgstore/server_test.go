package pgstore

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"synctray/internal/testsupport/pgtest"
	"synctray/upstream"
	"synctray/upstream/storetest"
)

// TestEveryInstanceStreamsEveryInstancesEvents runs two upstream servers
// on one database: a host following /v1/events/ws on one gets what
// clients sent to the other.
func TestEveryInstanceStreamsEveryInstancesEvents(t *testing.T) {
	dsn := pgtest.DB(t)
	var clients []*upstream.Client
	for range 2 {
		s := openT(t, dsn, testOptions())
		waitListening(t, s)
		srv := upstream.NewServer(s, upstream.Options{Logger: quiet})
		ts := httptest.NewServer(srv)
		t.Cleanup(func() { srv.Close(); ts.Close() })
		clients = append(clients, &upstream.Client{BaseURL: ts.URL, HTTP: ts.Client()})
	}
	ctx, cancel := context.WithCancel(context.Background())
	events := make(chan upstream.Event, 10)
	done := make(chan error, 1)
	// Polling an hour apart: only the WebSocket can deliver in time.
	go func() { done <- clients[0].Follow(ctx, 0, time.Hour, func(e upstream.Event) { events <- e }) }()
	defer func() { cancel(); <-done }()

	var got []string
	for i, key := range []string{"one", "two", "three"} {
		res, err := clients[(i+1)%2].Send(context.Background(), []upstream.Action{storetest.Act(key, "note", `{}`)})
		if err != nil || res[0].Status != upstream.StatusApplied {
			t.Fatalf("send %s: %v %v", key, res, err)
		}
		select {
		case e := <-events:
			got = append(got, e.Key)
		case <-time.After(10 * time.Second):
			t.Fatalf("no event for %s in 10s (got %v)", key, got)
		}
	}
	if strings.Join(got, ",") != "one,two,three" {
		t.Fatalf("got %v", got)
	}
}
