package main

import (
	"go.uber.org/zap"

	"github.com/rsgate/rsgate/mapping"
)

// Open files and the default connection limit.
//
// At start the gateway raises its soft RLIMIT_NOFILE to the hard limit (raiseNoFile). When
// limits.max_connections is 0 (the default), the client connection limit is derived from that limit so
// that a flood of idle connections can never take the last file descriptors:
//
//	max_connections = NOFILE - reserve,   reserve = 64 + 2 x B + NOFILE / 16
//
// where B is the number of backend connections the configuration can open (connections x addresses for
// RSocket backends, http.max_conns_per_address x addresses for http backends), doubled to leave room for
// reconnects and DNS changes; 64 covers the listeners, the log, the config file, TLS files and the admin
// listener's clients; NOFILE/16 is a margin for everything else. The result is at least 16. With
// NOFILE = 1,024 and one backend of 2 connections: 1024 - (64 + 4 + 64) = 892.

// noFileMinConnections is the smallest derived max_connections.
const noFileMinConnections = 16

// derivedMaxConnections is the formula above for an open-files limit of nofile.
func derivedMaxConnections(nofile uint64, cfg *mapping.Config) int {
	b := uint64(0)
	for _, be := range cfg.Backends {
		if be == nil {
			continue
		}
		per := uint64(max(be.Connections, 1))
		if be.Transport == mapping.TransportHTTP {
			per = uint64(max(be.HTTP.MaxConnsPerAddress, 1))
		}
		b += per * uint64(max(len(be.Addresses), 1))
	}
	reserve := 64 + 2*b + nofile/16
	if nofile <= reserve+noFileMinConnections {
		return noFileMinConnections
	}
	n := nofile - reserve
	const maxInt = int(^uint(0) >> 1)
	if n > uint64(maxInt) {
		return maxInt
	}
	return int(n)
}

// applyConnectionLimit sets cfg.Limits.MaxConnections from the open-files limit when the file leaves it 0.
// nofile 0 (unknown) leaves it 0: no limit beyond the server's own.
func applyConnectionLimit(cfg *mapping.Config, nofile uint64) {
	if cfg.Limits.MaxConnections == 0 && nofile > 0 {
		cfg.Limits.MaxConnections = derivedMaxConnections(nofile, cfg)
	}
}

// startLimits raises the open-files limit and derives limits.max_connections from it; it returns the
// limit (0: unknown).
func startLimits(cfg *mapping.Config, log *zap.Logger) uint64 {
	nofile, raised, err := raiseNoFile()
	switch {
	case err != nil:
		log.Warn("cannot raise the open-files limit", zap.Uint64("nofile", nofile), zap.Error(err))
	case raised:
		log.Info("raised the open-files limit to the hard limit", zap.Uint64("nofile", nofile))
	}
	derived := cfg.Limits.MaxConnections == 0
	applyConnectionLimit(cfg, nofile)
	if derived && nofile > 0 {
		log.Info("limits.max_connections derived from the open-files limit",
			zap.Int("max_connections", cfg.Limits.MaxConnections), zap.Uint64("nofile", nofile))
	} else if nofile > 0 && uint64(cfg.Limits.MaxConnections) > nofile {
		log.Warn("limits.max_connections is above the open-files limit; accepts will fail with EMFILE and be retried",
			zap.Int("max_connections", cfg.Limits.MaxConnections), zap.Uint64("nofile", nofile))
	}
	return nofile
}
