package main

import (
	"image/color"
	"math"
	"path/filepath"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

type barSeries struct {
	name        string
	med, lo, hi []float64 // per group; NaN = missing
}

// bars draws grouped bars (one colour per series) with min-max error bars.
func bars(file, title, ylabel string, groups []string, series []barSeries) error {
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = ylabel
	k := len(series)
	var ticks []plot.Tick
	for g, name := range groups {
		ticks = append(ticks, plot.Tick{Value: float64(g*(k+1)) + float64(k-1)/2, Label: strings.Replace(name, ", ", "\n", 1)})
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	p.Legend.Top = true
	top := 0.0
	for _, s := range series {
		for _, v := range s.hi {
			if !math.IsNaN(v) {
				top = math.Max(top, v)
			}
		}
	}
	for si, s := range series {
		var legendDone bool
		for g := range groups {
			v := s.med[g]
			if math.IsNaN(v) {
				continue
			}
			b, err := plotter.NewBarChart(plotter.Values{v}, vg.Points(max(6, 200/float64(len(groups)*(k+1)))))
			if err != nil {
				return err
			}
			b.XMin = float64(g*(k+1) + si)
			b.Color = plotutil.Color(si)
			b.LineStyle.Width = 0
			p.Add(b)
			if !legendDone {
				p.Legend.Add(s.name, b)
				legendDone = true
			}
			e := struct {
				plotter.XYs
				plotter.YErrors
			}{plotter.XYs{{X: b.XMin, Y: v}}, plotter.YErrors{{Low: v - s.lo[g], High: s.hi[g] - v}}}
			eb, err := plotter.NewYErrorBars(e)
			if err == nil {
				eb.Color = color.Black
				p.Add(eb)
			}
		}
	}
	p.Y.Min = 0
	p.Y.Max = top * (1.15 + 0.07*float64(k)) // room for the legend above the bars
	p.Y.Tick.Marker = thousands{}
	p.X.Min = -1
	p.X.Max = float64(len(groups)*(k+1)) - 1
	w := vg.Length(max(6, 2*float64(len(groups)))) * vg.Inch
	return p.Save(w, 4*vg.Inch, file)
}

type curveSeries struct {
	name  string
	curve [][2]float64 // [percentile, µs]
}

// nines maps a percentile to -log10(1 - p/100): 50 -> 0.3, 90 -> 1, 99 -> 2, 99.9 -> 3.
func nines(p float64) float64 { return -math.Log10(1 - math.Min(p, 99.9999)/100) }

// curves draws latency percentile curves (x on a "nines" scale, y log µs).
func curves(file, title string, series []curveSeries) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "percentile"
	p.Y.Label.Text = "latency (µs, log scale)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = ticks125{}
	var ticks []plot.Tick
	for _, t := range []struct {
		v float64
		l string
	}{{50, "50"}, {90, "90"}, {99, "99"}, {99.9, "99.9"}, {99.99, "99.99"}, {99.999, "99.999"}} {
		ticks = append(ticks, plot.Tick{Value: nines(t.v), Label: t.l})
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	p.Legend.Top = false // curves rise to the right: the bottom right corner is free
	p.Legend.Left = false
	for i, s := range series {
		var xy plotter.XYs
		for _, c := range s.curve {
			if c[0] < 50 || c[1] <= 0 {
				continue
			}
			xy = append(xy, plotter.XY{X: nines(c[0]), Y: c[1]})
		}
		if len(xy) == 0 {
			continue
		}
		l, pts, err := plotter.NewLinePoints(xy)
		if err != nil {
			return err
		}
		l.Color, pts.Color = plotutil.Color(i), plotutil.Color(i)
		l.Dashes = plotutil.Dashes(i / 7)
		pts.Shape = plotutil.Shape(i)
		p.Add(l, pts)
		p.Legend.Add(s.name, l, pts)
	}
	return p.Save(7*vg.Inch, 4.5*vg.Inch, file)
}

type lineSeries struct {
	name   string
	xy     [][2]float64
	dashed bool
}

func lines(file, title, xlabel, ylabel string, series []lineSeries) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = xlabel
	p.Y.Label.Text = ylabel
	p.Legend.Top = true
	for i, s := range series {
		var xy plotter.XYs
		for _, c := range s.xy {
			xy = append(xy, plotter.XY{X: c[0], Y: c[1]})
		}
		if len(xy) == 0 {
			continue
		}
		l, err := plotter.NewLine(xy)
		if err != nil {
			return err
		}
		l.Color = plotutil.Color(i)
		if s.dashed {
			l.Dashes = []vg.Length{vg.Points(6), vg.Points(3)}
		}
		l.Width = vg.Points(1.5)
		p.Add(l)
		p.Legend.Add(s.name, l)
	}
	p.Y.Min = 0
	p.Y.Tick.Marker = thousands{}
	return p.Save(7*vg.Inch, 4*vg.Inch, file)
}

func pngPath(name string) string { return filepath.Join(*pngDir, name) }

// ticks125 labels 1-2-5 steps of each decade (log axes with a narrow range get more than one label).
type ticks125 struct{}

func (ticks125) Ticks(lo, hi float64) []plot.Tick {
	var t []plot.Tick
	for e := math.Floor(math.Log10(math.Max(lo, 1e-9))); math.Pow(10, e) <= hi*10; e++ {
		for _, m := range []float64{1, 2, 5} {
			v := m * math.Pow(10, e)
			if v >= lo && v <= hi {
				t = append(t, plot.Tick{Value: v, Label: fmtThousands(v)})
			}
		}
	}
	return t
}

// thousands: gonum's default ticks, labelled 12,500 rather than 12500.00.
type thousands struct{}

func (thousands) Ticks(lo, hi float64) []plot.Tick {
	t := plot.DefaultTicks{}.Ticks(lo, hi)
	for i := range t {
		if t[i].Label != "" {
			if hi-lo < 20 {
				t[i].Label = strconv.FormatFloat(t[i].Value, 'f', -1, 64)
			} else {
				t[i].Label = fmtThousands(t[i].Value)
			}
		}
	}
	return t
}
