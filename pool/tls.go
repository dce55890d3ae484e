package pool

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"github.com/rsgate/rsgate/mapping"
)

// TLSConfig builds the client *tls.Config for a backend's "tls" section. A nil section gives a nil config
// (plain TCP / ws://). CA adds a PEM root pool (default: system roots); Cert and Key load a client
// certificate for mutual TLS (both or neither); ServerName and InsecureSkipVerify are copied. When
// ServerName is empty the dialer verifies the host of the address being dialled (the pool sets it to the
// configured host name when it dials a resolved IP). The result is fresh: callers may modify it.
func TLSConfig(t *mapping.TLS) (*tls.Config, error) {
	if t == nil {
		return nil, nil
	}
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         t.ServerName,
		InsecureSkipVerify: t.InsecureSkipVerify, //nolint:gosec // explicit opt-in from the config, documented as testing only
	}
	if t.CA != "" {
		pem, err := os.ReadFile(t.CA)
		if err != nil {
			return nil, &TLSError{Field: "tls.ca", Err: err}
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, &TLSError{Field: "tls.ca", Err: fmt.Errorf("no PEM certificate found in %s", t.CA)}
		}
		cfg.RootCAs = roots
	}
	switch {
	case t.Cert != "" && t.Key != "":
		cert, err := tls.LoadX509KeyPair(t.Cert, t.Key)
		if err != nil {
			return nil, &TLSError{Field: "tls.cert", Err: err}
		}
		cfg.Certificates = []tls.Certificate{cert}
	case t.Cert != "":
		return nil, &TLSError{Field: "tls.key", Err: errors.New("tls.cert is set but tls.key is not")}
	case t.Key != "":
		return nil, &TLSError{Field: "tls.cert", Err: errors.New("tls.key is set but tls.cert is not")}
	}
	return cfg, nil
}

// TLSError reports a backend TLS setting that could not be used (unreadable file, bad PEM, half a key
// pair). Field is the config key ("tls.ca", "tls.cert", "tls.key").
type TLSError struct {
	Field string
	Err   error
}

func (e *TLSError) Error() string { return "pool: " + e.Field + ": " + e.Err.Error() }

func (e *TLSError) Unwrap() error { return e.Err }
