// Command gateway is rsgate: an edge gateway that serves HTTP/JSON and WebSocket clients and carries their calls
// as RSocket streams over a few persistent, multiplexed connections per backend.
//
//	gateway -config config.yaml      run with a configuration file
//	gateway -demo                    run config.example.yaml with the embedded demo RSocket service
//	gateway -demo -demo-addr ADDR    the same, with the demo service on ADDR instead of 127.0.0.1:7878
//	gateway -check -config FILE      validate the file, print the route table, exit 0 or 1
//	gateway -version
//
// Signals: SIGTERM and SIGINT drain in-flight requests (up to shutdown_grace) and exit; SIGHUP reloads the
// configuration file (a bad file changes nothing).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/rsgate/rsgate"
	"github.com/rsgate/rsgate/internal/demo"
	"github.com/rsgate/rsgate/mapping"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

type flags struct {
	config   string
	check    bool
	demo     bool
	demoAddr string
	version  bool
	listen   string
	admin    string
	logLevel string

	worker *workerEnv // set in a worker process (workers.go), not a flag
}

func parseFlags(args []string, stderr io.Writer) (*flags, error) {
	f := &flags{}
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.config, "config", "", "configuration file (YAML); with -demo the default is the embedded config.example.yaml")
	fs.BoolVar(&f.check, "check", false, "validate the configuration, print the route table and exit (0 valid, 1 invalid)")
	fs.BoolVar(&f.demo, "demo", false, "also start the demo RSocket service (on -demo-addr)")
	fs.StringVar(&f.demoAddr, "demo-addr", demo.DefaultAddr, "with -demo: the demo RSocket service's address (host:port; port 0 picks a free port); backend addresses equal to "+demo.DefaultAddr+" are pointed at it")
	fs.BoolVar(&f.version, "version", false, "print the version and exit")
	fs.StringVar(&f.listen, "listen", "", "override the configuration's listen address")
	fs.StringVar(&f.admin, "admin", "", `override the configuration's admin address ("off" disables it)`)
	fs.StringVar(&f.logLevel, "log-level", "", "override the configuration's log level (debug, info, warn, error)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "%s\n\n", usageLine)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if f.demoAddr != demo.DefaultAddr && !f.demo {
		return nil, errors.New("-demo-addr needs -demo")
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	return f, nil
}

// usageLine names every flag parseFlags defines (TestUsageListsEveryFlag keeps the two in step).
const usageLine = "Usage: gateway [-config FILE] [-check] [-demo [-demo-addr ADDR]] [-listen ADDR] [-admin ADDR|off] [-log-level LEVEL] [-version]"

func versionString() string {
	v := version
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " (" + s.Value[:12] + ")"
			}
		}
		v += " " + bi.GoVersion
	}
	return "rsgate gateway " + v
}

func run(args []string, stdout, stderr io.Writer) int {
	f, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "gateway:", err)
		return 2
	}
	if f.version {
		fmt.Fprintln(stdout, versionString())
		return 0
	}
	if f.worker, err = workerFromEnv(); err != nil {
		fmt.Fprintln(stderr, "gateway:", err)
		return 1
	}
	cfg, err := loadConfig(f)
	if err != nil {
		fmt.Fprintln(stderr, err)
		f.worker.report(err)
		return 1
	}
	table, err := mapping.Compile(cfg)
	if err != nil {
		fmt.Fprintln(stderr, err)
		f.worker.report(err)
		return 1
	}
	if f.check {
		printRouteTable(stdout, cfg, table)
		fmt.Fprintf(stdout, "%s: configuration is valid (%d routes, %d backends)\n", cfg.File, len(cfg.Routes), len(cfg.Backends))
		if cfg.Workers > 1 {
			fmt.Fprintf(stdout, "workers: %d processes with GOMAXPROCS=%d each; limits, rate limits and resumable sessions are per worker\n",
				cfg.Workers, workerProcs(cfg.Workers))
			for _, c := range workerCaveats(cfg) {
				fmt.Fprintln(stdout, "warning:", c)
			}
		}
		return 0
	}
	log, err := newLogger(cfg, f.logLevel)
	if err != nil {
		fmt.Fprintln(stderr, "gateway:", err)
		f.worker.report(err)
		return 1
	}
	defer log.Sync() //nolint:errcheck // nothing useful to do on a failed sync at exit

	switch {
	case f.worker != nil:
		log = log.With(zap.Int("worker", f.worker.index))
	case cfg.Workers > 1 && f.demo:
		log.Warn("-demo runs one process: workers ignored", zap.Int("workers", cfg.Workers))
	case cfg.Workers > 1:
		return supervise(f, args, cfg, log, stdout, stderr, signals())
	}
	g, err := start(f, cfg, table, log)
	if err != nil {
		log.Error("start failed", zap.Error(err))
		f.worker.report(err)
		return 1
	}
	f.worker.report(nil)
	if f.demo {
		printDemoHelp(stdout, g.listenAddr())
	}
	return g.wait(signals())
}

// loadConfig reads -config, or the embedded example with -demo, and applies the flag overrides.
func loadConfig(f *flags) (*mapping.Config, error) {
	var (
		cfg *mapping.Config
		err error
	)
	switch {
	case f.config != "":
		cfg, err = mapping.Load(f.config)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("gateway: configuration file %s does not exist (-config FILE; `gateway -demo` runs the example configuration)", f.config)
		}
		if err != nil && !errors.As(err, new(*mapping.ConfigError)) {
			return nil, fmt.Errorf("gateway: cannot read the configuration: %w", err)
		}
	case f.demo:
		cfg, err = mapping.Parse(rsgate.ExampleConfig, rsgate.ExampleConfigName+" (embedded)")
	default:
		return nil, errors.New("gateway: no configuration: use -config FILE, or -demo to run the example (see -h)")
	}
	if err != nil {
		return nil, err
	}
	if f.listen != "" {
		cfg.Listen = f.listen
	}
	if f.admin != "" {
		if f.admin == "off" {
			cfg.Admin = ""
		} else {
			cfg.Admin = f.admin
		}
	}
	return cfg, nil
}

func newLogger(cfg *mapping.Config, levelOverride string) (*zap.Logger, error) {
	level := cfg.Log.Level
	if levelOverride != "" {
		level = levelOverride
	}
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("log level %q: %w", level, err)
	}
	zc := zap.NewProductionConfig()
	if cfg.Log.Format == "console" {
		zc = zap.NewDevelopmentConfig()
		zc.EncoderConfig.EncodeLevel = zapcore.CapitalColorLevelEncoder
	}
	zc.Level = zap.NewAtomicLevelAt(lvl)
	zc.EncoderConfig.TimeKey = "ts"
	zc.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	zc.DisableStacktrace = true
	return zc.Build()
}

// signals delivers SIGTERM/SIGINT/SIGHUP.
func signals() <-chan os.Signal {
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	return ch
}

// shutdownContext bounds a drain by the configured grace period.
func shutdownContext(grace time.Duration) (context.Context, context.CancelFunc) {
	if grace <= 0 {
		grace = 15 * time.Second
	}
	return context.WithTimeout(context.Background(), grace)
}
