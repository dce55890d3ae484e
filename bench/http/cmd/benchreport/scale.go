package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
)

// scaling writes the core-scaling table from several runs of run.sh -cores N: for each peer and connection
// count, the median req/s at every N, req/s per core, and the scaling factor from the smallest N to each
// larger one (req/s at N / req/s at the smallest N). Linear scaling from 1 to 2 cores is 2.0.
func scaling(w io.Writer, spec string, order []string) error {
	type run struct {
		cores  int
		trials []trial
	}
	var runs []run
	for _, f := range strings.Fields(spec) {
		n, path, ok := strings.Cut(f, "=")
		cores, err := strconv.Atoi(n)
		if !ok || err != nil || cores < 1 {
			return fmt.Errorf("-scale: want N=trials.tsv, got %q", f)
		}
		fh, err := os.Open(path)
		if err != nil {
			return err
		}
		ts, err := read(fh)
		fh.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		runs = append(runs, run{cores, ts})
	}
	if len(runs) == 0 {
		return fmt.Errorf("-scale: no runs")
	}
	sort.Slice(runs, func(i, j int) bool { return runs[i].cores < runs[j].cores })
	medRPS := func(ts []trial, peer string, conns int) float64 {
		var xs []float64
		for _, t := range ts {
			if t.peer == peer && t.conns == conns && t.rps > 0 {
				xs = append(xs, t.rps)
			}
		}
		return summarize(xs).med
	}
	peerSet, connSet := map[string]bool{}, map[int]bool{}
	for _, r := range runs {
		for _, t := range r.trials {
			peerSet[t.peer], connSet[t.conns] = true, true
		}
	}
	var peers []string
	for _, p := range order {
		if peerSet[p] {
			peers = append(peers, p)
			delete(peerSet, p)
		}
	}
	for p := range peerSet {
		peers = append(peers, p)
	}
	var conns []int
	for c := range connSet {
		conns = append(conns, c)
	}
	sort.Ints(conns)

	base := runs[0].cores
	fmt.Fprintf(w, "### Scaling with cores (median req/s; per core = req/s / N; scaling = req/s at N / req/s at %d)\n\n", base)
	fmt.Fprintf(w, "| conns | peer |")
	for _, r := range runs {
		fmt.Fprintf(w, " req/s @%d | per core @%d |", r.cores, r.cores)
	}
	for _, r := range runs[1:] {
		fmt.Fprintf(w, " scaling %d→%d |", base, r.cores)
	}
	fmt.Fprintf(w, "\n|---:|---|%s\n", strings.Repeat("---:|", 2*len(runs)+len(runs)-1))
	for _, c := range conns {
		for _, p := range peers {
			fmt.Fprintf(w, "| %d | %s |", c, p)
			b := medRPS(runs[0].trials, p, c)
			for _, r := range runs {
				v := medRPS(r.trials, p, c)
				if v < 0 {
					fmt.Fprintf(w, " n/a | n/a |")
					continue
				}
				fmt.Fprintf(w, " %.0f | %.0f |", v, v/float64(r.cores))
			}
			for _, r := range runs[1:] {
				v := medRPS(r.trials, p, c)
				if v < 0 || b <= 0 {
					fmt.Fprintf(w, " n/a |")
					continue
				}
				fmt.Fprintf(w, " %.2fx |", v/b)
			}
			fmt.Fprintln(w)
		}
	}
	return nil
}
