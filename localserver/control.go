package localserver

import (
	"context"

	"synctray/localserver/outbox"
	"synctray/localserver/syncer"
)

// The methods below are the JSON API's operations as Go calls, for the tray
// app that runs the host in-process (and for tests).

// List returns a page of actions, newest first.
func (h *Host) List(ctx context.Context, q outbox.ListQuery) (outbox.Page, error) {
	return describedStore{h.db}.List(ctx, q)
}

// Get returns an action with its history. Errors: outbox.ErrNotFound.
func (h *Host) Get(ctx context.Context, id int64) (outbox.Action, []outbox.Change, error) {
	return describedStore{h.db}.Get(ctx, id)
}

// Cancel cancels a queued or failed action. Errors: outbox.ErrNotFound,
// *outbox.TransitionError.
func (h *Host) Cancel(ctx context.Context, id int64) (outbox.Action, error) {
	return describedStore{h.db}.Cancel(ctx, id)
}

// Retry queues a failed action again. Errors: outbox.ErrNotFound,
// *outbox.TransitionError.
func (h *Host) Retry(ctx context.Context, id int64) (outbox.Action, error) {
	a, err := describedStore{h.db}.Retry(ctx, id)
	if err == nil {
		h.engine.Kick()
	}
	return a, err
}

// CancelAllQueued cancels every queued action and says how many.
func (h *Host) CancelAllQueued(ctx context.Context) (int, error) {
	return h.db.CancelAllQueued(ctx)
}

// SyncNow sends everything queued now, also in work-offline mode.
func (h *Host) SyncNow(ctx context.Context) (syncer.Report, error) {
	return h.engine.SyncNow(ctx)
}

// SetWorkOffline pauses or resumes automatic sync.
func (h *Host) SetWorkOffline(ctx context.Context, off bool) error {
	h.engine.SetWorkOffline(off)
	return nil
}

// Subscribe returns live events, as /ws sends them; Close it when done.
func (h *Host) Subscribe(since int64) *Subscription { return h.hub.Subscribe(since) }
