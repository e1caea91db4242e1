package localserver

import (
	"context"
	"encoding/json"

	"synctray/internal/failure"
	"synctray/localserver/httpup"
	"synctray/localserver/outbox"
)

// describe fills in a's Summary: the request and its answer for an HTTP
// write, the text of a message.
func describe(a *outbox.Action) {
	switch a.Type {
	case httpup.ActionType:
		a.Summary = httpup.Summary(*a)
	default:
		var p struct {
			Text string `json:"text"`
		}
		if json.Unmarshal(a.Payload, &p) == nil && p.Text != "" {
			a.Summary = failure.Line(p.Text)
		}
	}
}

// describedStore is the outbox as people see it: every action it returns
// carries its Summary.
type describedStore struct{ outbox.Store }

func (s describedStore) Enqueue(ctx context.Context, n outbox.NewAction) (outbox.Action, bool, error) {
	a, created, err := s.Store.Enqueue(ctx, n)
	describe(&a)
	return a, created, err
}

func (s describedStore) EnqueueBatch(ctx context.Context, ns []outbox.NewAction) ([]outbox.EnqueueResult, error) {
	rs, err := s.Store.EnqueueBatch(ctx, ns)
	for i := range rs {
		describe(&rs[i].Action)
	}
	return rs, err
}

func (s describedStore) Get(ctx context.Context, id int64) (outbox.Action, []outbox.Change, error) {
	a, h, err := s.Store.Get(ctx, id)
	describe(&a)
	return a, h, err
}

func (s describedStore) List(ctx context.Context, q outbox.ListQuery) (outbox.Page, error) {
	p, err := s.Store.List(ctx, q)
	for i := range p.Actions {
		describe(&p.Actions[i])
	}
	return p, err
}

func (s describedStore) Cancel(ctx context.Context, id int64) (outbox.Action, error) {
	a, err := s.Store.Cancel(ctx, id)
	describe(&a)
	return a, err
}

func (s describedStore) Retry(ctx context.Context, id int64) (outbox.Action, error) {
	a, err := s.Store.Retry(ctx, id)
	describe(&a)
	return a, err
}
