package app

import (
	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/widget"
)

// Labels of the small windows: the link the browser could not open, and a
// start-up error.
const (
	TitleOpenLink     = "Open synctray in your browser"
	TitleStartupError = "synctray could not start"
	LabelCopyLink     = "Copy link"
	LabelCopied       = "Copied"
	LabelClose        = "Close"
)

// linkWindow shows a login link that the browser could not be made to
// open, with a Copy button: the tray menu has no other way to hand it over.
type linkWindow struct {
	w    fyne.Window
	why  *widget.Label
	link *widget.Label
	copy *widget.Button
}

// showLink shows (or updates) the link window. It runs on the UI thread.
func (a *App) showLink(url string, err error) {
	if a.link == nil {
		lw := &linkWindow{w: a.fa.NewWindow(TitleOpenLink)}
		lw.why = widget.NewLabel("")
		lw.why.Wrapping = fyne.TextWrapWord
		lw.link = widget.NewLabel("")
		lw.link.Selectable = true
		lw.link.Wrapping = fyne.TextWrapBreak
		lw.copy = widget.NewButton(LabelCopyLink, nil)
		lw.copy.Importance = widget.HighImportance
		closeB := widget.NewButton(LabelClose, func() { lw.w.Close() })
		lw.w.SetContent(a.themed(container.NewPadded(container.NewVBox(lw.why, lw.link,
			container.NewHBox(layout.NewSpacer(), closeB, lw.copy)))))
		lw.w.Resize(fyne.NewSize(520, 180))
		lw.w.SetOnClosed(func() { a.link = nil }) // on the UI thread
		a.link = lw
	}
	lw := a.link
	lw.why.SetText("The browser could not be started (" + err.Error() + "). Open this one-time link in your browser:")
	lw.link.SetText(url)
	lw.copy.SetText(LabelCopyLink)
	lw.copy.OnTapped = func() {
		a.fa.Clipboard().SetContent(url)
		lw.copy.SetText(LabelCopied)
	}
	lw.w.Show()
	lw.w.RequestFocus()
}

// startupErrorWindow says why the tray app could not start.
type startupErrorWindow struct {
	w       fyne.Window
	message *widget.Label
	close   *widget.Button
}

func newStartupErrorWindow(fa fyne.App, err error) *startupErrorWindow {
	sw := &startupErrorWindow{w: fa.NewWindow(TitleStartupError)}
	sw.w.SetIcon(AppIcon)
	heading := widget.NewLabelWithStyle(TitleStartupError, fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	sw.message = widget.NewLabel(err.Error())
	sw.message.Wrapping = fyne.TextWrapWord
	sw.message.Selectable = true
	sw.close = widget.NewButton(LabelClose, func() { sw.w.Close() })
	sw.close.Importance = widget.HighImportance
	content := container.NewBorder(heading, container.NewHBox(layout.NewSpacer(), sw.close), nil, nil,
		container.NewVScroll(sw.message))
	sw.w.SetContent(container.NewThemeOverride(container.NewPadded(content), focusTheme{fa.Settings().Theme()}))
	sw.w.Resize(fyne.NewSize(560, 220))
	sw.w.SetMaster() // closing it quits the app
	sw.w.Canvas().Focus(sw.close)
	return sw
}

// ShowStartupError shows why synctray could not start (a data dir that
// cannot be written, a port taken) in a window of its own, for a tray app
// started from a desktop menu, whose stderr nobody reads. Closing it quits
// the app: run fa.Run after it.
func ShowStartupError(fa fyne.App, err error) fyne.Window {
	sw := newStartupErrorWindow(fa, err)
	sw.w.Show()
	return sw.w
}
