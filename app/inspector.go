package app

import (
	"errors"
	"fmt"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"synctray/localserver/httpup"
	"synctray/localserver/outbox"
)

// Button and filter labels of the inspector.
const (
	LabelCancel          = "Cancel"
	LabelRetry           = "Retry"
	LabelCopyKey         = "Copy key"
	LabelCancelAllQueued = "Cancel all queued…"
	LabelConfirmCancel   = "Cancel them"
	LabelQuitApp         = "Quit synctray"
	LabelNewer           = "Newer"
	LabelOlder           = "Older"
	noSelection          = "Select an action to see its payload and history."
	maxPayloadShown      = 16 << 10
)

// filterOrder lists the filters left to right; "" is "all".
var filterOrder = []outbox.State{outbox.Queued, outbox.Syncing, outbox.Synced, outbox.Failed, outbox.Cancelled, ""}

func filterTitle(s outbox.State) string {
	if s == "" {
		return "All"
	}
	return strings.ToUpper(string(s[:1])) + string(s[1:])
}

// columns of the table. A column with a widest value is as wide as that
// value or its title, whichever is wider; the columns without one (free
// text) share what is left, by share.
var columns = []struct {
	title  string
	widest string  // the widest value the column shows; "": free text
	share  float32 // of the width left for free text
}{
	{"Created", "Dec 30 23:59:59", 0},
	{"Summary", "", 0.6},
	{"State", "cancelled", 0},
	{"Attempts", "999", 0},
	{"Next try", "23:59:59", 0},
	{"Last error", "", 0.4},
}

// The table's columns fit the table's part of the default window (1200 ×
// 700, the table taking splitOffset of it): the whole row shows without a
// horizontal scrollbar. The key is in the detail pane.
const (
	defaultWidth = 1200
	splitOffset  = 0.64
	// tableChrome is the part of the table's width that no column gets:
	// the split's handle, the table's padding and separators, its vertical
	// scrollbar. (At 30, with the columns taking all the rest, the Xvfb
	// screenshot still showed a horizontal scrollbar; at 45 it shows none.)
	tableChrome = 45
)

// textWidth is how wide a table cell (a label) must be to show s whole.
func textWidth(s string, bold bool) float32 {
	l := widget.NewLabelWithStyle(s, fyne.TextAlignLeading, fyne.TextStyle{Bold: bold})
	return l.MinSize().Width
}

// columnWidths sizes the columns to their content within avail pixels.
func columnWidths(avail float32) []float32 {
	w := make([]float32, len(columns))
	left := avail
	for i, c := range columns {
		if c.widest != "" {
			w[i] = max(textWidth(c.widest, false), textWidth(c.title, true))
			left -= w[i]
		}
	}
	for i, c := range columns {
		if c.widest == "" {
			w[i] = max(left*c.share, textWidth(c.title, true))
		}
	}
	return w
}

// inspector is the outbox window. Its fields are touched on the UI thread
// only (apply and render run through App.ui; Fyne calls the handlers).
type inspector struct {
	a *App
	w fyne.Window

	status    *widget.Label
	lastError *widget.Label
	offline   *widget.Check
	filters   map[outbox.State]*widget.Button
	filterBar *fyne.Container
	bottom    *fyne.Container

	table    *actionTable
	rows     []outbox.Action
	selRow   int // the table's selected row, -1: none
	selID    int64
	selAct   *outbox.Action // the selected action as last loaded; nil: not loaded
	copyKey  *widget.Button // copies the key of the action shown
	keyShown string         // the key of the action the detail pane shows; "": none
	pageOf   *widget.Label
	newer    *widget.Button
	older    *widget.Button
	hasNext  bool

	detail      *fyne.Container
	detailTitle *widget.Label
	fields      *widget.Label
	payload     *widget.Label
	history     *widget.Label

	syncNow, cancel, retry, cancelAll *widget.Button
	notice                            *widget.Label
}

func newInspector(a *App) *inspector {
	in := &inspector{a: a, selRow: -1, filters: map[outbox.State]*widget.Button{}}
	in.w = a.fa.NewWindow("synctray — outbox")
	in.w.SetIcon(AppIcon)

	in.status = widget.NewLabelWithStyle("", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	in.lastError = widget.NewLabel("")
	in.lastError.Importance = widget.DangerImportance
	in.lastError.Wrapping = fyne.TextWrapWord
	in.lastError.Hide()
	in.offline = widget.NewCheck(LabelWorkOffline, func(on bool) {
		if on != a.snapshot().status.WorkOffline {
			a.setWorkOffline(on)
		}
	})

	filterBar := container.NewHBox()
	in.filterBar = filterBar
	for _, s := range filterOrder {
		b := widget.NewButton(filterTitle(s), func() {
			a.update(func(vm *viewModel) {
				if vm.filter != s {
					vm.filter, vm.cursors, vm.gen = s, []int64{0}, vm.gen+1
				}
			})
			a.kick(true)
		})
		in.filters[s] = b
		filterBar.Add(b)
	}

	in.table = newActionTable(
		func() (int, int) { return len(in.rows), len(columns) },
		func() fyne.CanvasObject {
			l := widget.NewLabel("")
			l.Truncation = fyne.TextTruncateEllipsis
			return l
		},
		in.updateCell,
	)
	in.table.onKey = in.selectionKey
	in.table.ShowHeaderRow = true
	in.table.CreateHeader = func() fyne.CanvasObject {
		return widget.NewLabelWithStyle("", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	}
	in.table.UpdateHeader = func(id widget.TableCellID, o fyne.CanvasObject) {
		if id.Col >= 0 && id.Col < len(columns) {
			o.(*widget.Label).SetText(columns[id.Col].title)
		}
	}
	for i, w := range columnWidths(defaultWidth*splitOffset - tableChrome) {
		in.table.SetColumnWidth(i, w)
	}
	in.table.OnSelected = func(id widget.TableCellID) {
		in.selRow = id.Row
		if id.Row < 0 || id.Row >= len(in.rows) {
			return
		}
		sid := in.rows[id.Row].ID
		if sid == in.selID {
			return // re-selected after a reload: nothing new
		}
		in.selID = sid
		a.update(func(vm *viewModel) { vm.selected = sid })
		in.table.Refresh()
		in.detailTitle.SetText(fmt.Sprintf("Action %d", sid))
		a.kick(true)
	}

	in.newer = widget.NewButtonWithIcon(LabelNewer, theme.NavigateBackIcon(), func() {
		a.update(func(vm *viewModel) {
			if len(vm.cursors) > 1 {
				vm.cursors, vm.gen = vm.cursors[:len(vm.cursors)-1], vm.gen+1
			}
		})
		a.kick(true)
	})
	in.older = widget.NewButtonWithIcon(LabelOlder, theme.NavigateNextIcon(), func() {
		if !in.hasNext || len(in.rows) == 0 {
			return
		}
		next := in.rows[len(in.rows)-1].ID
		a.update(func(vm *viewModel) { vm.cursors, vm.gen = append(vm.cursors, next), vm.gen+1 })
		a.kick(true)
	})
	in.older.IconPlacement = widget.ButtonIconTrailingText
	in.pageOf = widget.NewLabel("")

	in.detailTitle = widget.NewLabelWithStyle(noSelection, fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	in.detailTitle.Wrapping = fyne.TextWrapWord
	in.fields = widget.NewLabel("")
	in.fields.Wrapping = fyne.TextWrapWord
	in.fields.Selectable = true
	in.copyKey = widget.NewButtonWithIcon(LabelCopyKey, theme.ContentCopyIcon(), func() {
		if in.keyShown != "" {
			a.fa.Clipboard().SetContent(in.keyShown)
		}
	})
	in.copyKey.Hide()
	in.payload = widget.NewLabelWithStyle("", fyne.TextAlignLeading, fyne.TextStyle{Monospace: true})
	in.payload.Wrapping = fyne.TextWrapBreak
	in.history = widget.NewLabelWithStyle("", fyne.TextAlignLeading, fyne.TextStyle{Monospace: true})
	in.history.Wrapping = fyne.TextWrapWord
	in.detail = container.NewVBox(in.detailTitle, in.fields, container.NewHBox(in.copyKey),
		widget.NewLabelWithStyle("Payload", fyne.TextAlignLeading, fyne.TextStyle{Bold: true}), in.payload,
		widget.NewLabelWithStyle("History", fyne.TextAlignLeading, fyne.TextStyle{Bold: true}), in.history)

	in.syncNow = widget.NewButton(LabelSyncNow, a.syncNow)
	in.syncNow.Importance = widget.HighImportance
	in.cancel = widget.NewButton(LabelCancel, func() {
		if id := a.snapshot().selected; id != 0 {
			a.cancelAction(id)
		}
	})
	in.retry = widget.NewButton(LabelRetry, func() {
		if id := a.snapshot().selected; id != 0 {
			a.retryAction(id)
		}
	})
	in.cancelAll = widget.NewButton(LabelCancelAllQueued, func() {
		n := a.snapshot().status.Counts[outbox.Queued]
		d := dialog.NewConfirm("Cancel all queued actions?",
			fmt.Sprintf("%s will not be sent. Actions being sent right now are not cancelled.", plural(n, "queued action")),
			func(ok bool) {
				if ok {
					a.cancelAllQueued()
				}
			}, in.w)
		d.SetConfirmText(LabelConfirmCancel)
		d.SetDismissText("Keep them")
		d.SetConfirmImportance(widget.DangerImportance)
		d.Show()
	})
	in.notice = widget.NewLabel("")
	in.notice.Wrapping = fyne.TextWrapWord

	buttons := container.NewHBox(in.syncNow, in.cancel, in.retry, layout.NewSpacer(), in.cancelAll)
	top := container.NewVBox(
		container.NewBorder(nil, nil, nil, in.offline, in.status),
		in.lastError,
		filterBar,
		buttons,
	)
	right := []fyne.CanvasObject{in.newer, in.pageOf, in.older}
	if a.tray == nil {
		// Without a tray icon, the window is the only way to quit.
		right = append(right, widget.NewButton(LabelQuitApp, a.quit))
	}
	bottom := container.NewBorder(nil, nil, nil, container.NewHBox(right...), in.notice)
	in.bottom = bottom
	split := container.NewHSplit(in.table, container.NewVScroll(container.NewPadded(in.detail)))
	split.Offset = splitOffset
	in.w.SetContent(a.themed(container.NewBorder(top, bottom, nil, nil, split)))
	in.w.Resize(fyne.NewSize(defaultWidth, 700))
	// Keys act on the selection where that is safe: Delete cancels (as the
	// Cancel button: only what may be cancelled), Enter retries a failed
	// action; both only when the button they stand for is enabled.
	in.w.Canvas().SetOnTypedKey(in.typedKey)
	in.w.SetCloseIntercept(func() {
		in.w.Hide()
		a.update(func(vm *viewModel) { vm.visible = false })
	})
	return in
}

func (in *inspector) updateCell(id widget.TableCellID, o fyne.CanvasObject) {
	l := o.(*widget.Label)
	if id.Row < 0 || id.Row >= len(in.rows) {
		l.SetText("")
		return
	}
	a := in.rows[id.Row]
	var text string
	imp := widget.MediumImportance
	switch id.Col {
	case 0:
		text = when(a.CreatedAt, "Jan 2 15:04:05")
	case 1:
		text = a.Summary // the host's one line: a message's text, "POST /todos → 201 Created"
		if text == "" {
			text = a.Type
		}
	case 2:
		text = string(a.State)
		switch a.State {
		case outbox.Failed:
			imp = widget.DangerImportance
		case outbox.Synced:
			imp = widget.SuccessImportance
		case outbox.Queued, outbox.Syncing:
			imp = widget.HighImportance
		}
	case 3:
		text = fmt.Sprint(a.Attempts)
	case 4:
		text = whenPtr(a.NextAttemptAt, "15:04:05")
	case 5:
		text = oneLine(a.LastError)
	}
	bold := a.ID == in.selID
	if l.Text != text || l.Importance != imp || l.TextStyle.Bold != bold {
		l.Text, l.Importance, l.TextStyle.Bold = text, imp, bold
		l.Refresh()
	}
}

// typedKey runs on the UI thread (Fyne calls it) for keys no widget took.
func (in *inspector) typedKey(ev *fyne.KeyEvent) { in.selectionKey(ev) }

// selectionKey acts on the selection for Delete (Cancel) and Enter
// (Retry), when the button it stands for is enabled; it reports whether
// the key was one of them.
func (in *inspector) selectionKey(ev *fyne.KeyEvent) bool {
	switch ev.Name {
	case fyne.KeyDelete, fyne.KeyBackspace:
		if !in.cancel.Disabled() {
			in.cancel.OnTapped()
		}
		return true
	case fyne.KeyReturn, fyne.KeyEnter:
		if !in.retry.Disabled() {
			in.retry.OnTapped()
		}
		return true
	}
	return false
}

// actionTable is the outbox table: a widget.Table that also takes Delete
// and Enter. A click on a row gives the table the focus, and Fyne then
// sends keys to it rather than to the window's handler; widget.Table
// itself ignores both.
type actionTable struct {
	widget.Table
	onKey func(*fyne.KeyEvent) bool // true: the key was taken
}

func newActionTable(length func() (int, int), create func() fyne.CanvasObject, update func(widget.TableCellID, fyne.CanvasObject)) *actionTable {
	t := &actionTable{}
	t.Length, t.CreateCell, t.UpdateCell = length, create, update
	t.ExtendBaseWidget(t)
	return t
}

// TypedKey: Delete and Enter act on the selection, the other keys move
// and select as in any table.
func (t *actionTable) TypedKey(ev *fyne.KeyEvent) {
	if t.onKey != nil && t.onKey(ev) {
		return
	}
	t.Table.TypedKey(ev)
}

// actionHint says which buttons an action's state rules out, and why.
func actionHint(s outbox.State) string {
	switch s {
	case outbox.Syncing:
		return "Being sent right now: it cannot be cancelled or retried until the upstream answers."
	case outbox.Synced:
		return "It has reached the upstream: there is nothing to cancel or retry."
	case outbox.Cancelled:
		return "It was cancelled: it will not be sent."
	case outbox.Queued:
		return "Queued: Retry is for failed actions; Cancel (or Delete) keeps it from being sent."
	}
	return ""
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// apply shows a reload: the status parts always, the table and the detail
// pane when pv is for the current filter and page.
func (in *inspector) apply(vm viewModel, pv *pageView) {
	if pv != nil && pv.gen == vm.gen {
		if pv.err != nil {
			vm.notice = notice{text: "Could not list the outbox: " + pv.err.Error(), err: true}
		} else {
			in.rows = pv.page.Actions
			in.hasNext = pv.page.Next != 0
			in.table.Refresh()
			in.keepSelection(vm.selected)
		}
		in.showDetail(vm.selected, pv.detail)
	}
	in.render(vm)
}

// keepSelection selects the row of the selected action again after the
// rows moved, or clears the table's selection when it left this page (the
// detail pane keeps showing it).
func (in *inspector) keepSelection(id int64) {
	in.selID = id
	for i, r := range in.rows {
		if r.ID == id {
			if in.selRow != i {
				in.selRow = i
				in.table.Select(widget.TableCellID{Row: i, Col: 0})
			}
			return
		}
	}
	if in.selRow >= 0 {
		in.selRow = -1
		in.table.UnselectAll()
	}
}

func (in *inspector) showDetail(selected int64, d *detailView) {
	switch {
	case selected == 0:
		in.setDetail(noSelection, "", "", "")
	case d == nil || d.id != selected:
		// not loaded yet
	case errors.Is(d.err, outbox.ErrNotFound):
		in.setDetail(fmt.Sprintf("Action %d no longer exists (pruned after the retention period)", selected), "", "", "")
	case d.err != nil:
		in.setDetail(fmt.Sprintf("Action %d: %v", selected, d.err), "", "", "")
	default:
		a := d.act
		in.selAct = &a
		in.keyShown = a.Key
		var f strings.Builder
		if a.Summary != "" {
			fmt.Fprintf(&f, "%s\n", shorten(a.Summary, 200))
		}
		fmt.Fprintf(&f, "Key: %s\nType: %s\nAttempts: %d\nCreated: %s\nUpdated: %s", a.Key, a.Type, a.Attempts,
			when(a.CreatedAt, "2006-01-02 15:04:05.000"), when(a.UpdatedAt, "2006-01-02 15:04:05.000"))
		if a.SyncedAt != nil {
			fmt.Fprintf(&f, "\nSynced: %s", whenPtr(a.SyncedAt, "2006-01-02 15:04:05.000"))
		}
		if a.NextAttemptAt != nil {
			fmt.Fprintf(&f, "\nNext attempt: %s", whenPtr(a.NextAttemptAt, "2006-01-02 15:04:05"))
		}
		if a.LastError != "" {
			fmt.Fprintf(&f, "\nLast error: %s", a.LastError)
		}
		if why := actionHint(a.State); why != "" {
			fmt.Fprintf(&f, "\n%s", why)
		}
		var h strings.Builder
		for i, c := range d.history {
			from := string(c.From)
			if from == "" {
				from = "(new)"
			}
			if i > 0 {
				h.WriteByte('\n')
			}
			fmt.Fprintf(&h, "%s  %s → %s", when(c.At, "2006-01-02 15:04:05.000"), from, c.To)
			if c.Detail != "" {
				fmt.Fprintf(&h, "  %s", c.Detail)
			}
		}
		body := prettyJSON(a.Payload, maxPayloadShown)
		if a.Type == httpup.ActionType {
			body = shortenBytes(httpup.Detail(a), maxPayloadShown) // the request kept and the upstream's answer
		}
		in.setDetail(fmt.Sprintf("Action %d · %s", a.ID, a.State), f.String(), body, h.String())
	}
}

func (in *inspector) setDetail(title, fields, payload, history string) {
	if fields == "" {
		in.keyShown = "" // no action shown
	}
	if (in.keyShown != "") != in.copyKey.Visible() {
		if in.keyShown != "" {
			in.copyKey.Show()
		} else {
			in.copyKey.Hide()
		}
	}
	changed := setText(in.detailTitle, title)
	changed = setText(in.fields, fields) || changed
	changed = setText(in.payload, payload) || changed
	changed = setText(in.history, history) || changed
	if changed {
		in.detail.Refresh() // wrapped labels changed height: lay the pane out again
	}
}

// setText changes a label only when its text changed (no needless
// redraw), and says whether it did.
func setText(l *widget.Label, s string) bool {
	if l.Text == s {
		return false
	}
	l.SetText(s)
	return true
}

// render shows the parts of the view-model that need no reload: status,
// counts on the filters, buttons, pager and notice.
func (in *inspector) render(vm viewModel) {
	if vm.haveStatus {
		st := vm.status
		line, _ := StatusLine(st)
		if st.LastSync != nil {
			line += " · last sync " + whenPtr(st.LastSync, "15:04:05")
		}
		setText(in.status, line)
		if st.LastError != "" && (st.Problem == nil || st.Problem.Message != st.LastError) {
			setText(in.lastError, "Last error: "+st.LastError)
			in.lastError.Show()
		} else {
			in.lastError.Hide()
		}
		if in.offline.Checked != st.WorkOffline {
			in.offline.Checked = st.WorkOffline // no OnChanged: this is not the user
			in.offline.Refresh()
		}
	}
	total := 0
	for _, s := range outbox.States {
		total += vm.status.Counts[s]
	}
	relayout := false
	for _, s := range filterOrder {
		n := total
		if s != "" {
			n = vm.status.Counts[s]
		}
		b := in.filters[s]
		text := fmt.Sprintf("%s (%s)", filterTitle(s), count(n))
		imp := widget.MediumImportance
		if vm.filter == s {
			imp = widget.HighImportance
		}
		if b.Text != text || b.Importance != imp {
			b.Text, b.Importance = text, imp
			b.Refresh()
			relayout = true
		}
	}
	if relayout {
		in.filterBar.Refresh() // the buttons' widths changed
	}
	// Buttons follow what the selected action's state allows (the domain's
	// state machine); the detail pane says why when they are off.
	st := outbox.State("")
	if in.selAct != nil && in.selAct.ID == vm.selected {
		st = in.selAct.State
	}
	setEnabled(in.cancel, vm.selected != 0 && outbox.CanTransition(st, outbox.Cancelled))
	setEnabled(in.retry, vm.selected != 0 && st == outbox.Failed)
	setEnabled(in.cancelAll, vm.status.Counts[outbox.Queued] > 0)

	page := len(vm.cursors)
	setEnabled(in.newer, page > 1)
	setEnabled(in.older, in.hasNext)
	n := total
	if vm.filter != "" {
		n = vm.status.Counts[vm.filter]
	}
	var pageOf string
	switch {
	case len(in.rows) > 0:
		first := (page-1)*in.a.o.PageSize + 1
		pageOf = fmt.Sprintf("%s–%s of %s", count(first), count(first+len(in.rows)-1), count(max(n, first+len(in.rows)-1)))
	case page > 1:
		pageOf = fmt.Sprintf("Page %d: no more actions", page)
	default:
		pageOf = "No actions"
	}
	if setText(in.pageOf, pageOf) {
		in.bottom.Refresh()
	}
	setText(in.notice, vm.notice.text)
	imp := widget.MediumImportance
	if vm.notice.err {
		imp = widget.DangerImportance
	}
	if in.notice.Importance != imp {
		in.notice.Importance = imp
		in.notice.Refresh()
	}
}

func setEnabled(b *widget.Button, on bool) {
	if on && b.Disabled() {
		b.Enable()
	} else if !on && !b.Disabled() {
		b.Disable()
	}
}
