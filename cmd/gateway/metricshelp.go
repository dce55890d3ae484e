package main

import (
	"bufio"
	"bytes"
	"io"
	"strings"

	"github.com/VictoriaMetrics/metrics"
)

// metricHelp is the # HELP text of the gateway's metric families (README.md, "The metric families").
// VictoriaMetrics/metrics writes "# HELP name" with no text; writeMetrics fills it in from here, and for
// the Go runtime and process families, which the library defines, from what their names say.
var metricHelp = map[string]string{
	"rsgate_http_requests_total": "Finished HTTP requests and streams by route and status class (route=\"_unmatched\": no route matched).",
	// With workers > 1, written by the supervisor (workers.go) after the workers' merged families.
	"rsgate_workers":                       "Worker processes running (workers > 1).",
	"rsgate_worker_restarts_total":         "Workers that exited on their own and were started again.",
	"rsgate_http_request_duration_seconds": "HTTP request duration by route, in seconds (streams: to their end).",
	"rsgate_http_inflight_requests":        "HTTP requests and streams in progress by route.",
	"rsgate_stream_items_total":            "Stream items written to clients by route (SSE events, NDJSON lines, WebSocket messages).",
	"rsgate_websocket_sessions":            "Open client WebSocket sessions by route.",
	"rsgate_backend_connections":           "Backend connections ready to take requests.",
	"rsgate_backend_inflight":              "Requests and streams holding a backend connection slot.",
	"rsgate_backend_ewma_latency_seconds":  "Mean peak-EWMA latency of the backend's ready connections, in seconds.",
	"rsgate_backend_reconnects_total":      "Backend connections made after the first one of their slot.",
	"rsgate_backend_dial_errors_total":     "Failed dials (and refused SETUPs) to the backend.",
	"rsgate_backend_pick_errors_total":     "Requests answered 503 by the backend's pool, by reason (overloaded, no_connection, no_lease).",
	"rsgate_backend_lease_available":       "lease: true backends: requests the current leases still allow, summed over the ready connections.",
	"rsgate_shadow_requests_total":         "Shadow copies by route and result (match, mismatch, error, dropped).",
	"rsgate_split_requests_total":          "Requests of a split route by route and chosen backend.",
	// Admission control (README "Overload"), per route and per backend.
	"rsgate_admission_limit":                   "Current concurrency limit of the route's admission control.",
	"rsgate_admission_inflight":                "Requests holding a slot of the route's admission limit.",
	"rsgate_admission_queued":                  "Requests waiting in the route's admission queue.",
	"rsgate_admission_shed_total":              "Requests of the route answered 503 OVERLOADED by admission control (queue full or queue timeout).",
	"rsgate_backend_admission_limit":           "Current adaptive concurrency limit of the backend (at most max_inflight).",
	"rsgate_backend_admission_inflight":        "Requests holding a slot of the backend's adaptive limit.",
	"rsgate_backend_admission_queued":          "Requests waiting for a slot of the backend's adaptive limit.",
	"rsgate_backend_admission_shed_total":      "Requests answered 503 OVERLOADED because the backend's adaptive limit was reached.",
	"rsgate_stream_parked":                     "SSE streams kept for resumption after their client disconnected or their end was written (stream.resume_window).",
	"rsgate_stream_idle_timeouts_total":        "Streams ended by stream.idle_timeout: credit outstanding and no item from the backend (STREAM_IDLE).",
	"rsgate_stream_resumed_total":              "SSE streams taken up again by a client reconnecting with Last-Event-ID.",
	"rsgate_stream_resume_misses_total":        "Last-Event-ID values that named no parked stream (unknown, expired or of another route).",
	"rsgate_stream_parked_expired_total":       "Parked SSE streams canceled because no client came back within stream.resume_window.",
	"rsgate_stream_park_refused_total":         "Disconnected SSE streams not parked because limits.max_parked_streams was reached.",
	"rsgate_retries_total":                     "Request-response retries by route and condition (rejected, unsent, no_lease, application_error, timeout, connection_lost).",
	"rsgate_retry_budget_exhausted_total":      "Retries and hedges not sent because the route's retry budget was spent.",
	"rsgate_hedges_total":                      "Hedged copies of request-response calls sent, by route.",
	"rsgate_hedge_wins_total":                  "Hedged copies that answered before the first try, by route.",
	"rsgate_backend_ejections_total":           "Backend addresses ejected by outlier detection (consecutive failures).",
	"rsgate_backend_ejection_recoveries_total": "Ejected backend addresses brought back by a successful probe.",
	"rsgate_backend_ejected":                   "Backend addresses ejected now (or waiting for their probe).",
	// edge listener, access log, /rsocket strictness (sec-edge)
	"rsgate_accept_errors_total":               "Accept errors retried with backoff (EMFILE, ENFILE, ...), by listener (ingress, admin).",
	"rsgate_connections_refused_total":         "Client connections closed at accept, by reason (max_connections, per_ip).",
	"rsgate_client_connections":                "Client connections open (counted from accept to close, WebSocket sessions included).",
	"rsgate_linger_refused_total":              "Connections reset at once after a 413 or parse error instead of lingering (max_connections/16 linger at most).",
	"rsgate_access_log_dropped_total":          "Access log lines dropped because the log writer could not keep up (the request never waits for it).",
	"rsgate_rsocket_protocol_violations_total": "RSocket protocol violations by /rsocket clients, by route and kind (stream_zero, even_stream_id, stream_in_use, second_setup).",
	"rsgate_rsocket_clients_cut_total":         "/rsocket client connections cut by POST /debug/cut-clients (or the -demo page's button), by route.",
}

// writeMetrics writes the Prometheus text of every registered set, with a HELP text on every family.
func writeMetrics(w io.Writer) {
	var buf bytes.Buffer
	metrics.WritePrometheus(&buf, true)
	fillHelp(w, buf.Bytes())
}

// fillHelp copies the exposition in text to w, writing a text into every empty "# HELP family" line.
func fillHelp(w io.Writer, text []byte) {
	bw := bufio.NewWriter(w)
	for len(text) > 0 {
		line := text
		if i := bytes.IndexByte(text, '\n'); i >= 0 {
			line, text = text[:i+1], text[i+1:]
		} else {
			text = nil
		}
		rest, ok := bytes.CutPrefix(line, []byte("# HELP "))
		family := strings.TrimSpace(string(rest))
		if !ok || strings.ContainsAny(family, " \t") { // not HELP, or HELP with a text already
			bw.Write(line)
			continue
		}
		bw.WriteString("# HELP " + family + " " + helpText(family) + "\n")
	}
	_ = bw.Flush()
}

// helpText is the family's entry in metricHelp, or a text derived from its name.
func helpText(family string) string {
	if h, ok := metricHelp[family]; ok {
		return h
	}
	words := func(s string) string { return strings.ReplaceAll(s, "_", " ") }
	switch {
	case strings.HasPrefix(family, "go_"):
		return "Go runtime: " + words(family[len("go_"):]) + " (runtime/metrics and runtime.MemStats)."
	case strings.HasPrefix(family, "process_"):
		return "Process: " + words(family[len("process_"):]) + " (from /proc)."
	case strings.HasPrefix(family, "rsgate_"):
		return "rsgate: " + words(family[len("rsgate_"):]) + " (see the metric families in README.md)."
	}
	return words(family) + "."
}
