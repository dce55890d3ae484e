// Package auth verifies client credentials for the gateway's routes: JSON Web Tokens against a JWK Set
// (provider type jwt) and static API keys compared by their SHA-256 (provider type api_key).
//
// A Provider is built once per configuration (New) and is then safe for concurrent use; Verify is called on
// the request path. A jwt provider keeps its key set fresh in the background (refresh_interval) and on a
// token signed with an unknown key id (rate-limited by min_refresh_interval), and caches verified tokens
// until they expire (cache_size entries, dropped whenever the key set changes), so that a client that
// presents the same token again costs one hash and one map lookup, without allocating. Close stops the
// background refresh.
//
// Signature verification is github.com/golang-jwt/jwt/v5's; this package chooses the key (by kid, and only a
// key whose type and "alg" match the token's algorithm, so an HMAC token can never be checked against an RSA
// public key used as an HMAC secret) and the accepted algorithms ("none" is never among them).
//
// Errors: a missing credential is ErrNoCredentials; anything wrong with a presented one matches
// errors.Is(err, ErrInvalid) and is an *Error whose Reason is a short description fit for a
// WWW-Authenticate error_description.
package auth

import (
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/rsgate/rsgate/internal/principal"
	"github.com/rsgate/rsgate/mapping"
)

var (
	// ErrNoCredentials: the request carries no credential for the provider.
	ErrNoCredentials = errors.New("auth: no credentials")
	// ErrInvalid matches every rejection of a presented credential.
	ErrInvalid = errors.New("auth: invalid credentials")
)

// Error is a rejected credential. Reason is short, fixed text ("token expired", "invalid signature", ...)
// without quotes or backslashes.
type Error struct {
	Reason string
	Err    error // the underlying cause, if any
}

func (e *Error) Error() string {
	if e.Err != nil {
		return "auth: " + e.Reason + ": " + e.Err.Error()
	}
	return "auth: " + e.Reason
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

func invalid(reason string, cause error) *Error { return &Error{Reason: reason, Err: cause} }

// Identity is a verified client. It is immutable and shared (cached): do not modify it.
type Identity struct {
	Subject  string
	Provider string
	Scopes   []string
	// Entry is the whole composite metadata entry message/x.rsgate.principal.v0 describing this identity
	// (package internal/principal), ready to be appended to request metadata.
	Entry []byte
}

// HasScopes reports whether every scope of want is granted.
func (id *Identity) HasScopes(want []string) bool {
	for _, w := range want {
		ok := false
		for _, s := range id.Scopes {
			if s == w {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// NewIdentity builds an Identity and encodes its metadata entry. Fields that do not fit the entry's length
// prefixes are an error.
func NewIdentity(p *principal.Principal) (*Identity, error) {
	v, err := principal.Append(nil, p)
	if err != nil {
		return nil, err
	}
	return &Identity{Subject: p.Subject, Provider: p.Provider, Scopes: p.Scopes, Entry: principal.AppendEntry(nil, v)}, nil
}

// Provider verifies credentials.
type Provider interface {
	// Name is the provider's name (its key under "auth").
	Name() string
	// Type is mapping.AuthJWT or mapping.AuthAPIKey.
	Type() string
	// Header is the request header carrying the credential: "" for jwt (Authorization: Bearer), the
	// configured header for api_key.
	Header() string
	// QueryParam is the provider's query_param ("" = none).
	QueryParam() string
	// Verify checks a credential (a token or a key, without any "Bearer " prefix). It does not retain cred.
	Verify(cred []byte) (*Identity, error)
	// Close stops background work.
	Close()
}

// New builds the provider cfg describes. A jwt provider loads its key set before returning; an error
// then (unreadable file, failed fetch, no usable key) fails New, so that a bad configuration is found at
// start or reload and not on the first request.
func New(cfg *mapping.AuthProvider, log *zap.Logger) (Provider, error) {
	if log == nil {
		log = zap.NewNop()
	}
	switch cfg.Type {
	case mapping.AuthJWT:
		return newJWT(cfg, log)
	case mapping.AuthAPIKey:
		return newAPIKey(cfg)
	}
	return nil, fmt.Errorf("auth: provider %q: unknown type %q", cfg.Name, cfg.Type)
}
