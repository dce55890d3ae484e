package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"

	"github.com/rsgate/rsgate/internal/principal"
	"github.com/rsgate/rsgate/mapping"
)

// apiKey is a provider of type api_key: the SHA-256 of the presented key is compared, in constant time,
// with every configured digest (all of them, whatever matches, so that timing tells nothing about which
// digest is close). The key's name is the subject.
type apiKey struct {
	name, header, query string
	digests             [][sha256.Size]byte
	ids                 []*Identity
}

func newAPIKey(cfg *mapping.AuthProvider) (*apiKey, error) {
	p := &apiKey{name: cfg.Name, header: cfg.Header, query: cfg.QueryParam}
	if p.header == "" {
		p.header = mapping.DefaultAPIKeyHeader
	}
	for _, k := range cfg.Keys {
		b, err := hex.DecodeString(k.SHA256)
		if err != nil || len(b) != sha256.Size {
			return nil, fmt.Errorf("auth: provider %q: key %q: sha256 is not 64 hex digits", cfg.Name, k.Name)
		}
		id, err := NewIdentity(&principal.Principal{Subject: k.Name, Provider: cfg.Name})
		if err != nil {
			return nil, fmt.Errorf("auth: provider %q: key %q: %w", cfg.Name, k.Name, err)
		}
		p.digests = append(p.digests, [sha256.Size]byte(b))
		p.ids = append(p.ids, id)
	}
	return p, nil
}

func (p *apiKey) Name() string       { return p.name }
func (p *apiKey) Type() string       { return mapping.AuthAPIKey }
func (p *apiKey) Header() string     { return p.header }
func (p *apiKey) QueryParam() string { return p.query }
func (p *apiKey) Close()             {}

var errUnknownKey = invalid("unknown API key", nil)

func (p *apiKey) Verify(cred []byte) (*Identity, error) {
	if len(cred) == 0 {
		return nil, ErrNoCredentials
	}
	sum := sha256.Sum256(cred)
	match := -1
	for i := range p.digests {
		if subtle.ConstantTimeCompare(sum[:], p.digests[i][:]) == 1 {
			match = i
		}
	}
	if match < 0 {
		return nil, errUnknownKey
	}
	return p.ids[match], nil
}
