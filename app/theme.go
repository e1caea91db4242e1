package app

import (
	"image/color"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
)

// focusAlpha is the least opacity of the focus colour in synctray's
// windows. Fyne's default focus colour is the primary colour at 0x2a
// (16 %): on a button it is barely visible, so a keyboard user cannot tell
// where the focus is. At 60 % it is plain to see and the label on it stays
// readable.
const focusAlpha = 0x99

// focusTheme is a theme (the app's own, so the user's variant and primary
// colour still hold) with a focus colour strong enough to see.
type focusTheme struct{ fyne.Theme }

func (t focusTheme) Color(n fyne.ThemeColorName, v fyne.ThemeVariant) color.Color {
	c := t.Theme.Color(n, v)
	if n != theme.ColorNameFocus {
		return c
	}
	nc := color.NRGBAModel.Convert(c).(color.NRGBA)
	if nc.A < focusAlpha {
		nc.A = focusAlpha
	}
	return nc
}

// themed shows content of one of synctray's windows in the focus theme.
func (a *App) themed(content fyne.CanvasObject) fyne.CanvasObject {
	return container.NewThemeOverride(content, focusTheme{a.fa.Settings().Theme()})
}
