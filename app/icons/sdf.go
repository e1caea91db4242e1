package icons

import (
	"image"
	"image/color"
	"math"
)

// The shapes are signed distance fields, so every edge is anti-aliased
// exactly and the icons stay crisp when a panel scales them down to
// 16–24 px.

type vec struct{ x, y float64 }

func (a vec) add(b vec) vec       { return vec{a.x + b.x, a.y + b.y} }
func (a vec) sub(b vec) vec       { return vec{a.x - b.x, a.y - b.y} }
func (a vec) scale(s float64) vec { return vec{a.x * s, a.y * s} }
func (a vec) dot(b vec) float64   { return a.x*b.x + a.y*b.y }
func (a vec) len() float64        { return math.Hypot(a.x, a.y) }

// polar is the point at radius r and angle deg (degrees, clockwise from 3
// o'clock, since y grows downwards).
func polar(r, deg float64) vec {
	a := deg * math.Pi / 180
	return vec{r * math.Cos(a), r * math.Sin(a)}
}

// shape returns the signed distance from p to its edge; < 0 is inside.
type shape func(p vec) float64

func circle(c vec, r float64) shape {
	return func(p vec) float64 { return p.sub(c).len() - r }
}

// segment is a line from a to b of width w with round caps.
func segment(w float64, a, b vec) shape {
	return func(p vec) float64 {
		ab, ap := b.sub(a), p.sub(a)
		t := math.Max(0, math.Min(1, ap.dot(ab)/ab.dot(ab)))
		return ap.sub(ab.scale(t)).len() - w/2
	}
}

// arc is the part of a ring (centre c, radius r, width w) from angle from
// to angle to (degrees, clockwise, from < to), with round caps.
func arc(c vec, r, w, from, to float64) shape {
	a, b := c.add(polar(r, from)), c.add(polar(r, to))
	return func(p vec) float64 {
		q := p.sub(c)
		deg := math.Atan2(q.y, q.x) * 180 / math.Pi
		for deg < from {
			deg += 360
		}
		if deg <= to {
			return math.Abs(q.len()-r) - w/2
		}
		return math.Min(p.sub(a).len(), p.sub(b).len()) - w/2
	}
}

// polygon is a filled convex or concave polygon (Inigo Quilez's sdPolygon).
func polygon(v ...vec) shape {
	return func(p vec) float64 {
		d := p.sub(v[0]).dot(p.sub(v[0]))
		s := 1.0
		for i, j := 0, len(v)-1; i < len(v); j, i = i, i+1 {
			e, w := v[j].sub(v[i]), p.sub(v[i])
			b := w.sub(e.scale(math.Max(0, math.Min(1, w.dot(e)/e.dot(e)))))
			d = math.Min(d, b.dot(b))
			c1, c2, c3 := p.y >= v[i].y, p.y < v[j].y, e.x*w.y > e.y*w.x
			if (c1 && c2 && c3) || (!c1 && !c2 && !c3) {
				s = -s
			}
		}
		return s * math.Sqrt(d)
	}
}

// rounded grows a shape by r, rounding its corners.
func rounded(s shape, r float64) shape { return func(p vec) float64 { return s(p) - r } }

func roundedBox(min, max vec, r float64) shape {
	return func(p vec) float64 {
		cx, cy := (min.x+max.x)/2, (min.y+max.y)/2
		hx, hy := (max.x-min.x)/2-r, (max.y-min.y)/2-r
		qx, qy := math.Abs(p.x-cx)-hx, math.Abs(p.y-cy)-hy
		out := math.Hypot(math.Max(qx, 0), math.Max(qy, 0))
		return out + math.Min(math.Max(qx, qy), 0) - r
	}
}

func union(ss ...shape) shape {
	return func(p vec) float64 {
		d := math.Inf(1)
		for _, s := range ss {
			d = math.Min(d, s(p))
		}
		return d
	}
}

// layer is a shape filled with a colour (which may vary with the
// position), or, if erase, a shape cut out of everything below it.
type layer struct {
	s     shape
	col   func(p vec) color.NRGBA
	erase bool
}

func solid(c color.NRGBA) func(vec) color.NRGBA { return func(vec) color.NRGBA { return c } }

// gradient runs from top at y0 to bottom at y1 (icon units).
func gradient(top, bottom color.NRGBA, y0, y1 float64) func(vec) color.NRGBA {
	return func(p vec) color.NRGBA {
		t := math.Max(0, math.Min(1, (p.y-y0)/(y1-y0)))
		mix := func(a, b uint8) uint8 { return uint8(float64(a)*(1-t) + float64(b)*t + 0.5) }
		return color.NRGBA{mix(top.R, bottom.R), mix(top.G, bottom.G), mix(top.B, bottom.B), 255}
	}
}

// render draws the layers, bottom first, on a size×size image; shapes are
// in icon units (0..1 across the image).
func render(size int, layers ...layer) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	px := 1 / float64(size) // one pixel in icon units
	for y := 0; y < size; y++ {
		for x := 0; x < size; x++ {
			p := vec{(float64(x) + 0.5) * px, (float64(y) + 0.5) * px}
			var r, g, b, a float64
			for _, l := range layers {
				cov := math.Max(0, math.Min(1, 0.5-l.s(p)/px))
				if cov == 0 {
					continue
				}
				if l.erase {
					a *= 1 - cov
					continue
				}
				c := l.col(p)
				la := cov * float64(c.A) / 255
				// "over" with straight alpha
				na := la + a*(1-la)
				if na > 0 {
					r = (float64(c.R)*la + r*a*(1-la)) / na
					g = (float64(c.G)*la + g*a*(1-la)) / na
					b = (float64(c.B)*la + b*a*(1-la)) / na
				}
				a = na
			}
			img.SetNRGBA(x, y, color.NRGBA{uint8(r + 0.5), uint8(g + 0.5), uint8(b + 0.5), uint8(a*255 + 0.5)})
		}
	}
	return img
}
