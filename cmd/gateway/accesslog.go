package main

import (
	"os"

	"github.com/VictoriaMetrics/metrics"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/rsgate/rsgate/ingress"
	"github.com/rsgate/rsgate/mapping"
)

// accessLogSink is where the access log goes (standard error, as the other logs); tests replace it.
var accessLogSink zapcore.WriteSyncer = os.Stderr

// newAccessLogger builds the access logger: the same encoding as the gateway's log (json or console),
// no zap sampler (the production config's sampler kept about 1% of the lines under load, 5xx included),
// and an AsyncWriter between the encoder and the sink, so that requests never wait for the log
// (lines it cannot take count in rsgate_access_log_dropped_total). It is built even when the access log
// is off, since a reload can turn it on (log.access_log.enabled); the writer starts a goroutine only
// while lines are queued.
func newAccessLogger(cfg *mapping.Config, set *metrics.Set) (*zap.Logger, *ingress.AsyncWriter) {
	enc := zap.NewProductionEncoderConfig()
	enc.TimeKey = "ts"
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	var encoder zapcore.Encoder
	if cfg.Log.Format == "console" {
		dev := zap.NewDevelopmentEncoderConfig()
		dev.TimeKey, dev.EncodeTime = "ts", zapcore.ISO8601TimeEncoder
		encoder = zapcore.NewConsoleEncoder(dev)
	} else {
		encoder = zapcore.NewJSONEncoder(enc)
	}
	w := ingress.NewAsyncWriter(accessLogSink, ingress.DefaultAccessLogBuffer, set.GetOrCreateCounter(`rsgate_access_log_dropped_total`))
	core := zapcore.NewCore(encoder, w, zapcore.InfoLevel)
	return zap.New(core).Named("ingress"), w
}
