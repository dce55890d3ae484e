package main

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"time"

	"github.com/rsgate/rsgate/mapping"
	"github.com/rsgate/rsgate/pool"
)

// The JSON documents of /routes and /backends (README.md, "Admin endpoints", documents both shapes).
//
// Configuration is shown in the configuration's own key names and units: durations as Go duration
// strings ("5s", "1m30s"), sizes in bytes, every default applied. A key whose value is empty or zero and
// has no meaning at zero (an unset string, list, map or block, a zero duration) is left out; numbers and
// booleans are always shown ("lease": false, "mtu": 0). So a request-response route has no "stream"
// block, a tcp backend no "http" block, and a key added to mapping.Route or mapping.Backend appears here
// without a change to this file.

// obj is a JSON object whose keys keep their insertion order.
type obj []field

type field struct {
	k string
	v any
}

func (o obj) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(f.k)
		b.Write(k)
		b.WriteByte(':')
		v, err := json.Marshal(f.v)
		if err != nil {
			return nil, err
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

var durationType = reflect.TypeFor[mapping.Duration]()

// configView renders a configuration value (struct with yaml tags, map, slice, scalar). present is false
// for a value to leave out; nonzero tells whether it holds anything but zeros. A block (struct) is shown
// when one of its fields is non-zero: a request-response route has no "stream": {"window": 0}.
func configView(v reflect.Value) (val any, present, nonzero bool) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil, false, false
		}
		return configView(v.Elem())
	}
	if v.Type() == durationType {
		d := time.Duration(v.Int())
		return d.String(), d != 0, d != 0
	}
	switch v.Kind() {
	case reflect.Struct:
		var o obj
		any := false
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			sf := t.Field(i)
			name, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
			if !sf.IsExported() || name == "" || name == "-" {
				continue
			}
			if fv, ok, nz := configView(v.Field(i)); ok {
				o = append(o, field{name, fv})
				any = any || nz
			}
		}
		return o, any, any
	case reflect.Map:
		if v.Len() == 0 {
			return nil, false, false
		}
		m := make(map[string]any, v.Len())
		for it := v.MapRange(); it.Next(); {
			m[it.Key().String()], _, _ = configView(it.Value())
		}
		return m, true, true
	case reflect.Slice:
		if v.Len() == 0 {
			return nil, false, false
		}
		s := make([]any, v.Len())
		for i := range s {
			s[i], _, _ = configView(v.Index(i))
		}
		return s, true, true
	case reflect.String:
		return v.String(), v.Len() > 0, v.Len() > 0
	default:
		return v.Interface(), true, !v.IsZero()
	}
}

// routesView is the /routes document: the routes in configuration order, each as configured.
func routesView(cfg *mapping.Config) []any {
	out := make([]any, 0, len(cfg.Routes))
	for _, r := range cfg.Routes {
		v, _, _ := configView(reflect.ValueOf(r))
		out = append(out, v)
	}
	return out
}

// backendConfigView is one backend as configured; the http block only for transport http.
func backendConfigView(b *mapping.Backend) obj {
	v, _, _ := configView(reflect.ValueOf(b))
	o, _ := v.(obj)
	if b.Transport != mapping.TransportHTTP {
		out := o[:0:0]
		for _, f := range o {
			if f.k != "http" {
				out = append(out, f)
			}
		}
		o = out
	}
	return o
}

// backendsView is the /backends document: every backend by name, with its configuration and the state of
// each connection (RSocket) or upstream address (http).
func backendsView(cfg *mapping.Config, rs []pool.Stats, hs []pool.HTTPStats) []any {
	var out []any
	for _, s := range rs {
		b := cfg.Backends[s.Backend]
		lease := b != nil && b.Lease
		conns := make([]any, 0, len(s.Conns))
		for _, c := range s.Conns {
			o := obj{{"address", c.Address}}
			if c.Addr != "" && c.Addr != c.Address {
				o = append(o, field{"ip", c.Addr}) // the resolved address this slot dials
			}
			o = append(o,
				field{"slot", c.Slot},
				field{"state", c.State},
				field{"since", c.Since.UTC().Format(time.RFC3339Nano)},
				field{"inflight", c.InFlight},
				field{"ewma_latency", c.EWMA.String()},
			)
			if lease {
				o = append(o, field{"lease_available", c.Lease}) // a request may be sent under the current lease
			}
			o = append(o,
				field{"reconnects", c.Reconnects},
				field{"dial_failures", c.DialFailures},
				field{"errors", c.Errors},
			)
			if c.LastError != "" {
				o = append(o, field{"last_error", c.LastError})
			}
			conns = append(conns, o)
		}
		v := obj{{"name", s.Backend}}
		if b != nil {
			v = append(v, field{"config", backendConfigView(b)})
		}
		v = append(v,
			field{"ready", s.Ready},
			field{"ready_connections", s.ReadyConns},
			field{"inflight", s.InFlight},
			field{"reconnects", s.Reconnects},
			field{"connections", conns},
		)
		out = append(out, v)
	}
	for _, s := range hs {
		ups := make([]any, 0, len(s.Upstreams))
		for _, u := range s.Upstreams {
			ups = append(ups, obj{{"address", u.Addr}, {"state", u.State}, {"connections", u.Conns},
				{"pending", u.Pending}, {"consecutive_dial_failures", u.Fails}})
		}
		v := obj{{"name", s.Backend}}
		if b := cfg.Backends[s.Backend]; b != nil {
			v = append(v, field{"config", backendConfigView(b)})
		}
		v = append(v, field{"ready", s.Ready}, field{"inflight", s.InFlight}, field{"upstreams", ups})
		out = append(out, v)
	}
	if out == nil {
		out = []any{}
	}
	return out
}
