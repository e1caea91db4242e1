package icons

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

const root = "../.."

func decode(t *testing.T, path string) image.Image {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, path))
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return img
}

// TestCommittedIconsAreDrawn: every committed icon is what this package
// draws, pixel for pixel (a channel may be off by one, for floating point
// that fuses differently on other CPUs), so nobody edits a PNG by hand and
// nobody changes the drawing without regenerating (go run ./app/icons/gen.go).
func TestCommittedIconsAreDrawn(t *testing.T) {
	for path, want := range Files() {
		got := decode(t, path)
		if got.Bounds() != want.Bounds() {
			t.Errorf("%s is %v, the generator draws %v", path, got.Bounds().Size(), want.Bounds().Size())
			continue
		}
		bad, worst := 0, 0
		for y := 0; y < want.Bounds().Dy(); y++ {
			for x := 0; x < want.Bounds().Dx(); x++ {
				g := color.NRGBAModel.Convert(got.At(x, y)).(color.NRGBA)
				w := want.NRGBAAt(x, y)
				if w.A == 0 && g.A == 0 {
					continue
				}
				d := max(diff(g.R, w.R), diff(g.G, w.G), diff(g.B, w.B), diff(g.A, w.A))
				if d > 1 {
					bad++
				}
				worst = max(worst, d)
			}
		}
		if bad > 0 {
			t.Errorf("%s: %d pixels differ from the generator's (by up to %d); run go run ./app/icons/gen.go", path, bad, worst)
		}
	}
	svg, err := os.ReadFile(filepath.Join(root, MarkSVGPath))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(svg, MarkSVG()) {
		t.Errorf("%s is not what the generator writes; run go run ./app/icons/gen.go", MarkSVGPath)
	}
	svg, err = os.ReadFile(filepath.Join(root, AppIconSVGPath))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(svg, AppIconSVG()) {
		t.Errorf("%s is not what the generator writes; run go run ./app/icons/gen.go", AppIconSVGPath)
	}
}

func diff(a, b uint8) int {
	if a > b {
		return int(a - b)
	}
	return int(b - a)
}

// TestSizes: the sizes the platforms ask for, and that the web app's
// manifest and the desktop's FyneApp.toml point at these files.
func TestSizes(t *testing.T) {
	sizes := map[string]int{
		"app/icons/icon.png":                512,
		"app/icons/synced.png":              TraySize,
		"app/icons/queued.png":              TraySize,
		"app/icons/offline.png":             TraySize,
		"app/icons/error.png":               TraySize,
		"assets/icons/icon-192.png":         192,
		"assets/icons/icon-512.png":         512,
		"assets/icons/maskable-512.png":     512,
		"assets/icons/apple-touch-icon.png": 180,
	}
	for _, n := range HicolorSizes {
		sizes[HicolorPath(n)] = n
	}
	if len(sizes) != len(Files()) {
		t.Errorf("the generator draws %d files, the test knows %d", len(Files()), len(sizes))
	}
	for path, n := range sizes {
		if b := decode(t, path).Bounds(); b.Dx() != n || b.Dy() != n {
			t.Errorf("%s is %dx%d, want %dx%d", path, b.Dx(), b.Dy(), n, n)
		}
	}
	// Icons the platform masks (maskable, Apple touch) fill every pixel;
	// the maskable one keeps the mark inside the 40% safe circle.
	for _, path := range []string{"assets/icons/maskable-512.png", "assets/icons/apple-touch-icon.png"} {
		img := decode(t, path)
		if _, opaque := img.(*image.RGBA); !opaque {
			if o, ok := img.(interface{ Opaque() bool }); !ok || !o.Opaque() {
				t.Errorf("%s has transparent pixels; the platform's mask needs a full square", path)
			}
		}
	}
	m := decode(t, "assets/icons/maskable-512.png")
	bg := color.NRGBAModel.Convert(m.At(256, 60)).(color.NRGBA)
	for y := 0; y < 512; y++ {
		for x := 0; x < 512; x++ {
			dx, dy := float64(x)+0.5-256, float64(y)+0.5-256
			if dx*dx+dy*dy < 0.4*512*0.4*512 {
				continue
			}
			c := color.NRGBAModel.Convert(m.At(x, y)).(color.NRGBA)
			if c.R > bg.R+24 && c.G > bg.G+24 && c.B > bg.B+24 {
				t.Fatalf("maskable-512.png: mark at %d,%d, outside the safe zone", x, y)
			}
		}
	}

	toml, _ := os.ReadFile(filepath.Join(root, "FyneApp.toml"))
	if !regexp.MustCompile(`(?m)^Icon = "app/icons/icon.png"$`).Match(toml) {
		t.Errorf("FyneApp.toml does not use app/icons/icon.png:\n%s", toml)
	}
	manifest, _ := os.ReadFile(filepath.Join(root, "assets/manifest.webmanifest"))
	for _, want := range []string{`"/icons/icon-192.png", "sizes": "192x192"`, `"/icons/icon-512.png", "sizes": "512x512"`, `"/icons/maskable-512.png", "sizes": "512x512", "type": "image/png", "purpose": "maskable"`, `"theme_color": "` + hexOf(Brand) + `"`} {
		if !bytes.Contains(manifest, []byte(want)) {
			t.Errorf("manifest lacks %s", want)
		}
	}
	css, _ := os.ReadFile(filepath.Join(root, "assets/style.css"))
	if !bytes.Contains(css, []byte("--brand: "+hexOf(Brand)+";")) {
		t.Errorf("style.css's --brand is not the icons' teal %s", hexOf(Brand))
	}
	html, _ := os.ReadFile(filepath.Join(root, "assets/index.html"))
	for _, want := range []string{`<img src="/icons/mark.svg"`, `rel="apple-touch-icon" href="/icons/apple-touch-icon.png"`, `<meta name="theme-color" content="` + hexOf(Brand) + `">`} {
		if !bytes.Contains(html, []byte(want)) {
			t.Errorf("index.html lacks %s", want)
		}
	}
}

// TestTrayStatesDiffer: each state has its own colour at TraySample (which
// traytest reads over DBus), the same mark, and the states that want
// attention a badge the others lack, so the states differ in shape too,
// not only in colour.
func TestTrayStatesDiffer(t *testing.T) {
	imgs := map[State]image.Image{}
	for _, s := range States {
		img := decode(t, "app/icons/"+s.String()+".png")
		imgs[s] = img
		if c := color.NRGBAModel.Convert(img.At(TraySample.X, TraySample.Y)).(color.NRGBA); c != s.Colour() {
			t.Errorf("%s: colour %v at %v, want %s", s, c, TraySample, s.Hex())
		}
	}
	// Alpha (the silhouette) is the same in every state; the white parts
	// (mark and badge) tell the states apart without colour.
	whiteAt := func(img image.Image, x, y int) bool {
		c := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
		return c.R > 0xf0 && c.G > 0xf0 && c.B > 0xf0
	}
	for i, a := range States {
		for _, b := range States[i+1:] {
			if imgs[a].At(TraySample.X, TraySample.Y) == imgs[b].At(TraySample.X, TraySample.Y) {
				t.Errorf("%s and %s have the same colour", a, b)
			}
			shapes := 0
			for y := 0; y < TraySize; y++ {
				for x := 0; x < TraySize; x++ {
					if whiteAt(imgs[a], x, y) != whiteAt(imgs[b], x, y) {
						shapes++
					}
				}
			}
			if shapes < 20 {
				t.Errorf("%s and %s differ in %d white pixels only: the badge does not tell them apart", a, b, shapes)
			}
		}
	}
	// The mark is the app icon's: where the synced tray icon is white,
	// the app icon drawn at the same scale is white too.
	const inMark = 0.9
	tray, same, n := imgs[Synced], 0, 0
	app := render(TraySize, layer{s: mark(trayMarkC, trayMarkR/Extent), col: solid(white)})
	for y := 0; y < TraySize; y++ {
		for x := 0; x < TraySize; x++ {
			if app.NRGBAAt(x, y).A == 255 {
				n++
				if whiteAt(tray, x, y) {
					same++
				}
			}
		}
	}
	if n == 0 || float64(same)/float64(n) < inMark {
		t.Errorf("the synced tray icon shows %d of the mark's %d pixels", same, n)
	}
}
