package syncer_test

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"synctray/internal/failure"
	"synctray/localserver/syncer"
	"synctray/upstream/protocol"
)

// observations collects what the engine reports to Options.Observe.
type observations struct {
	mu  sync.Mutex
	all []syncer.Observation
}

func (o *observations) add(ob syncer.Observation) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.all = append(o.all, ob)
}

func (o *observations) take() []syncer.Observation {
	o.mu.Lock()
	defer o.mu.Unlock()
	all := o.all
	o.all = nil
	return all
}

func TestObserve(t *testing.T) {
	t.Run("reports each request with its outcome and status, and each batch", func(t *testing.T) {
		var obs observations
		e := newEnv(t, syncer.Options{WorkOffline: true, BatchSize: 2, Observe: obs.add})
		e.enqueue(3, `{"text":"hi"}`)
		if rep, err := e.eng.SyncNow(context.Background()); err != nil || rep.Synced != 3 {
			t.Fatalf("SyncNow = %+v, %v; want 3 synced", rep, err)
		}
		var requests, batches int
		for _, o := range obs.take() {
			switch o.What {
			case syncer.ObserveRequest:
				requests++
				if o.Outcome != failure.Delivered || o.Code != 200 || o.Actions < 1 {
					t.Errorf("request %+v, want delivered with code 200", o)
				}
			case syncer.ObserveBatch:
				batches++
			default:
				t.Errorf("observation %+v of an unknown kind", o)
			}
		}
		if requests != 2 || batches != 2 {
			t.Fatalf("observed %d requests and %d batches, want 2 and 2 (3 actions, 2 per batch)", requests, batches)
		}

		e.up.set(&protocol.HTTPError{Mode: failure.V1, StatusCode: http.StatusServiceUnavailable}, true)
		e.enqueue(1, `{"text":"later"}`)
		if _, err := e.eng.SyncNow(context.Background()); err != nil {
			t.Fatal(err)
		}
		got := obs.take()
		if len(got) != 2 || got[0].What != syncer.ObserveRequest || got[0].Outcome != failure.Transient || got[0].Code != 503 || got[1].What != syncer.ObserveBatch {
			t.Fatalf("after a 503: %+v, want one transient request with code 503, then its batch", got)
		}
	})

	t.Run("a network error is a request without a status", func(t *testing.T) {
		var obs observations
		e := newEnv(t, syncer.Options{WorkOffline: true, Observe: obs.add})
		e.up.set(context.DeadlineExceeded, false)
		e.enqueue(1, `{"text":"x"}`)
		if _, err := e.eng.SyncNow(context.Background()); err != nil {
			t.Fatal(err)
		}
		got := obs.take()
		if len(got) == 0 || got[0].Outcome != failure.Transient || got[0].Code != 0 {
			t.Fatalf("observed %+v, want a transient request with code 0", got)
		}
	})
}
