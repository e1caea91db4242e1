package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"synctray/internal/testsupport"
	"synctray/upstream"
)

// artifacts is where CI keeps the screenshots (the repository's artifacts/).
const artifacts = "../artifacts"

func TestScreenshots(t *testing.T) {
	viewports := []struct {
		name          string
		width, height int64
		mobile        bool
	}{
		{"phone", 390, 844, true},
		{"laptop", 1280, 800, false},
		{"narrow-laptop", 760, 720, false},
	}
	for _, vp := range viewports {
		t.Run("the app on a "+vp.name+" viewport, online and offline with queued messages", func(t *testing.T) {
			e := newEnv(t, options{width: vp.width, height: vp.height, mobile: vp.mobile})

			for _, text := range []string{"Picked up the keys from Ana.", "Meeting moved to 3 pm, same room."} {
				e.waitShown("sent", e.send(text))
			}
			other := testsupport.NewKey()
			if _, err := e.upClient.Send(t.Context(), []upstream.Action{{
				Key: other, Type: "message", Payload: json.RawMessage(`{"text":"Thanks! See you there. (from Sam's phone)"}`), CreatedAt: time.Now(),
			}}); err != nil {
				t.Fatal(err)
			}
			e.waitShown("other", other)
			e.waitJS("the page says online with nothing queued", `document.getElementById('conn').dataset.state === 'online' &&
				document.getElementById('count-host').textContent === '0'`)
			checkFits(e)
			shoot(e, vp.name+"-online")

			sw := e.worker()
			e.setOffline(true, e.ctx, sw)
			for _, text := range []string{"Written on the train, no signal.", "Second thought: bring the charger."} {
				e.waitShown("browser", e.send(text))
			}
			e.waitJS("the page says offline", `document.getElementById('conn').dataset.state === 'offline'`)
			e.do(chromedp.Click(chromedp.ID("sync-now")))
			e.waitResult("the Sync now result")
			checkFits(e)
			shoot(e, vp.name+"-offline")
			e.setOffline(false, e.ctx, sw)

			// A browser without a session, at the same size.
			ctx, cancel := chromedp.NewContext(e.ctx, chromedp.WithNewBrowserContext())
			defer cancel()
			var vpo []chromedp.EmulateViewportOption
			if vp.mobile {
				vpo = append(vpo, chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulateScale(2))
			}
			if err := chromedp.Do(ctx, chromedp.EmulateViewport(vp.width, vp.height, vpo...), chromedp.Navigate(e.origin+"/")); err != nil {
				t.Fatal(err)
			}
			e.waitJSIn(ctx, "the pill says not signed in", `document.getElementById('conn').dataset.state === 'signed-out'`)
			if err := chromedp.Do(ctx,
				chromedp.SetValue(chromedp.ID("text"), "Written before signing in."),
				chromedp.Click(chromedp.CSS(`#compose button[type="submit"]`)),
			); err != nil {
				t.Fatal(err)
			}
			e.waitJSIn(ctx, "the message waits in the browser", `document.querySelector('#messages li[data-state="browser"]')`)
			shootIn(e, ctx, vp.name+"-signed-out")
		})
	}
}

// checkFits fails when the page is wider than the viewport.
func checkFits(e *env) {
	e.t.Helper()
	if w := eval[[]int](e, `[document.documentElement.scrollWidth, window.innerWidth]`); w[0] > w[1] {
		e.t.Fatalf("the page is %d px wide in a %d px viewport", w[0], w[1])
	}
}

// shoot takes a screenshot, checks it shows something, and keeps it in
// artifacts/NAME.png.
func shoot(e *env, name string) {
	e.t.Helper()
	shootIn(e, e.ctx, name)
}

// shootIn is shoot for the tab ctx.
func shootIn(e *env, tab context.Context, name string) {
	e.t.Helper()
	if w := evalIn[[]int](e, tab, `[document.documentElement.scrollWidth, window.innerWidth]`); w[0] > w[1] {
		e.t.Fatalf("%s: the page is %d px wide in a %d px viewport", name, w[0], w[1])
	}
	evalIn[chromedp.Void](e, tab, `document.activeElement.blur(); window.scrollTo(0, 0)`)
	ctx, cancel := context.WithTimeout(tab, wait)
	defer cancel()
	buf, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		e.t.Fatalf("screenshot: %v", err)
	}
	img, err := png.Decode(bytes.NewReader(buf))
	if err != nil {
		e.t.Fatalf("screenshot is not a PNG: %v", err)
	}
	colours, fg := inkStats(img)
	if colours < 64 || fg < 0.05 {
		e.t.Fatalf("screenshot %s looks blank: %d colours, %.1f%% of pixels off the background", name, colours, fg*100)
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		e.t.Fatal(err)
	}
	path := filepath.Join(artifacts, "pwa-"+name+".png")
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		e.t.Fatal(err)
	}
	e.t.Logf("wrote %s (%dx%d, %d colours, %.0f%% ink)", path, img.Bounds().Dx(), img.Bounds().Dy(), colours, fg*100)
}

// inkStats returns the number of distinct colours and the share of pixels
// that differ from the most common one (the background).
func inkStats(img image.Image) (int, float64) {
	counts := map[uint32]int{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			counts[(r>>8)<<16|(g>>8)<<8|bl>>8]++
		}
	}
	most := 0
	for _, n := range counts {
		most = max(most, n)
	}
	total := b.Dx() * b.Dy()
	return len(counts), float64(total-most) / float64(total)
}
