package app

import (
	"image/color"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
)

func TestTheFocusThemeMakesTheFocusColourPlainToSeeInBothVariants(t *testing.T) {
	base := theme.DefaultTheme()
	th := focusTheme{base}
	for _, v := range []fyne.ThemeVariant{theme.VariantLight, theme.VariantDark} {
		was := color.NRGBAModel.Convert(base.Color(theme.ColorNameFocus, v)).(color.NRGBA)
		got := color.NRGBAModel.Convert(th.Color(theme.ColorNameFocus, v)).(color.NRGBA)
		if got.A < focusAlpha || got.A <= was.A {
			t.Errorf("variant %d: focus colour %v, want alpha ≥ %#x, stronger than Fyne's %#x", v, got, focusAlpha, was.A)
		}
		if got.R != was.R || got.G != was.G || got.B != was.B {
			t.Errorf("variant %d: focus colour %v, want the hue of Fyne's %v (the user's primary colour)", v, got, was)
		}
		for _, n := range []fyne.ThemeColorName{theme.ColorNameForeground, theme.ColorNameBackground, theme.ColorNamePrimary, theme.ColorNameButton} {
			if a, b := th.Color(n, v), base.Color(n, v); a != b {
				t.Errorf("variant %d: %s is %v, want Fyne's %v: only the focus colour changes", v, n, a, b)
			}
		}
	}
}

func TestTheOutboxWindowIsInTheFocusTheme(t *testing.T) {
	a := startApp(t, newFakeHost(), Options{Tray: &fakeTray{}})
	a.ShowInspector()
	waitFor(t, a, "the window", func() bool { return a.insp != nil })
	inspect(a, func() {
		o, ok := a.insp.w.Content().(*container.ThemeOverride)
		if !ok {
			t.Fatalf("the outbox window's content is a %T, want a *container.ThemeOverride", a.insp.w.Content())
		}
		if _, ok := o.Theme.(focusTheme); !ok {
			t.Fatalf("the outbox window's theme is a %T, want the focus theme", o.Theme)
		}
	})
}

// A focused button in the focus theme stands out from an unfocused one
// far more than in Fyne's default theme: the pixel left of its label,
// captured with the test driver.
func TestAFocusedButtonIsPlainToSeeInTheFocusTheme(t *testing.T) {
	test.NewTempApp(t)
	contrast := func(wrap func(fyne.CanvasObject) fyne.CanvasObject) int {
		b := widget.NewButton("Sync now", nil)
		w := test.NewWindow(wrap(container.NewCenter(b)))
		defer w.Close()
		w.Resize(fyne.NewSize(200, 80))
		at := func() color.NRGBA {
			img := w.Canvas().Capture()
			p := b.Position().Add(fyne.NewPos(6, b.Size().Height/2))
			s := w.Canvas().Scale()
			return color.NRGBAModel.Convert(img.At(int(p.X*s), int(p.Y*s))).(color.NRGBA)
		}
		before := at()
		w.Canvas().Focus(b)
		after := at()
		d := func(x, y uint8) int {
			if x > y {
				return int(x - y)
			}
			return int(y - x)
		}
		return d(before.R, after.R) + d(before.G, after.G) + d(before.B, after.B)
	}
	plain := contrast(func(o fyne.CanvasObject) fyne.CanvasObject {
		return container.NewThemeOverride(o, theme.DefaultTheme())
	})
	strong := contrast(func(o fyne.CanvasObject) fyne.CanvasObject {
		return container.NewThemeOverride(o, focusTheme{theme.DefaultTheme()})
	})
	t.Logf("contrast: focus theme %d, Fyne %d", strong, plain)
	if strong < 2*plain || strong < 60 {
		t.Errorf("focusing a button changes its colour by %d in the focus theme and %d in Fyne's: want it plain to see (≥ 60, twice Fyne's)", strong, plain)
	}
}
