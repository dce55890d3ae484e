package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/zap"

	"github.com/rsgate/rsgate/internal/jwk"
	"github.com/rsgate/rsgate/internal/principal"
	"github.com/rsgate/rsgate/mapping"
)

// jwtProvider is a provider of type jwt.
type jwtProvider struct {
	name, query   string
	leeway        time.Duration
	refresh       time.Duration
	minRefresh    time.Duration
	forwardClaims []string
	parser        *jwt.Parser
	algs          map[string]bool // accepted algorithms
	log           *zap.Logger

	keys  atomic.Pointer[keySet]
	cache *tokenCache // nil: no cache

	refreshMu   sync.Mutex // serialises loads; held during a fetch so that concurrent unknown kids wait for it
	src         keySource
	lastRefresh time.Time // guarded by refreshMu
	gen         uint64    // guarded by refreshMu

	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
}

func newJWT(cfg *mapping.AuthProvider, log *zap.Logger) (*jwtProvider, error) {
	p := &jwtProvider{
		name:          cfg.Name,
		query:         cfg.QueryParam,
		leeway:        cfg.Leeway.D(),
		refresh:       cfg.RefreshInterval.D(),
		minRefresh:    cfg.MinRefreshInterval.D(),
		forwardClaims: cfg.ForwardClaims,
		log:           log.With(zap.String("auth_provider", cfg.Name)),
		stop:          make(chan struct{}),
		done:          make(chan struct{}),
	}
	if p.refresh <= 0 {
		p.refresh = mapping.DefaultJWKSRefresh
	}
	max := int64(cfg.MaxJWKSSize)
	if max <= 0 {
		max = mapping.DefaultJWKSMaxSize
	}
	if cfg.JWKSURL != "" {
		timeout := cfg.FetchTimeout.D()
		if timeout <= 0 {
			timeout = mapping.DefaultJWKSFetchTimeout
		}
		p.src = &urlSource{url: cfg.JWKSURL, max: max, timeout: timeout, client: newHTTPClient()}
	} else {
		p.src = &fileSource{path: cfg.JWKSFile, max: max}
	}
	algs := cfg.Algorithms
	if len(algs) == 0 {
		algs = mapping.JWTAlgorithms
	}
	p.algs = map[string]bool{}
	for _, a := range algs {
		p.algs[a] = true
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(algs), // never "none"
		jwt.WithLeeway(p.leeway),
		jwt.WithExpirationRequired(),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if len(cfg.Audiences) > 0 {
		opts = append(opts, jwt.WithAudience(cfg.Audiences...)) // any of them
	}
	p.parser = jwt.NewParser(opts...)
	if cfg.CacheSize > 0 {
		p.cache = newTokenCache(cfg.CacheSize)
	}
	p.refreshMu.Lock()
	err := p.reloadLocked()
	p.refreshMu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("auth: provider %q: JWK Set %s: %w", cfg.Name, p.src, err)
	}
	go p.loop()
	return p, nil
}

func (p *jwtProvider) Name() string       { return p.name }
func (p *jwtProvider) Type() string       { return mapping.AuthJWT }
func (p *jwtProvider) Header() string     { return "" }
func (p *jwtProvider) QueryParam() string { return p.query }

// Close stops the background refresh and waits for it.
func (p *jwtProvider) Close() {
	p.stopOnce.Do(func() { close(p.stop) })
	<-p.done
}

func (p *jwtProvider) loop() {
	defer close(p.done)
	t := time.NewTicker(p.refresh)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.refreshMu.Lock()
			if err := p.reloadLocked(); err != nil {
				p.log.Warn("JWK Set refresh failed; keeping the current keys", zap.Stringer("source", p.src), zap.Error(err))
			}
			p.refreshMu.Unlock()
		}
	}
}

// reloadLocked reads the key set and installs it when it changed. A set without any usable key is an error
// (the current keys stay).
func (p *jwtProvider) reloadLocked() error {
	p.lastRefresh = time.Now()
	doc, changed, err := p.src.load(context.Background())
	if err != nil || !changed {
		return err
	}
	set, err := jwk.Parse(doc)
	if err != nil {
		return err
	}
	for _, s := range set.Skipped {
		p.log.Warn("JWK skipped", zap.Stringer("source", p.src), zap.String("reason", s))
	}
	if len(set.Keys) == 0 {
		return errors.New("no usable key in the set")
	}
	p.gen++
	p.keys.Store(&keySet{keys: set.Keys, gen: p.gen})
	if p.cache != nil {
		p.cache.clear() // tokens verified with a key that is gone must be verified again
	}
	return nil
}

// refreshForKid re-reads the key set for a token with an unknown kid, at most every min_refresh_interval.
// It reports whether the set changed meanwhile (gen differs from the caller's).
func (p *jwtProvider) refreshForKid(gen uint64) bool {
	p.refreshMu.Lock()
	defer p.refreshMu.Unlock()
	if p.gen != gen {
		return true // someone else reloaded while we waited
	}
	if time.Since(p.lastRefresh) < p.minRefresh {
		return false
	}
	if err := p.reloadLocked(); err != nil {
		p.log.Warn("JWK Set refresh for an unknown kid failed", zap.Stringer("source", p.src), zap.Error(err))
	}
	return p.gen != gen
}

// Reasons (error_description values).
const (
	reasonMalformed   = "malformed token"
	reasonExpired     = "token expired"
	reasonNotYet      = "token not yet valid"
	reasonIssuer      = "invalid issuer"
	reasonAudience    = "invalid audience"
	reasonSignature   = "invalid signature"
	reasonAlgorithm   = "algorithm not allowed"
	reasonUnknownKey  = "unknown signing key"
	reasonNoSubject   = "token has no subject"
	reasonClaims      = "invalid claims"
	reasonUnverifable = "token cannot be verified"
)

var errUnknownKid = errors.New("no key for the token's kid and algorithm")

// Verify implements Provider.
func (p *jwtProvider) Verify(cred []byte) (*Identity, error) {
	if len(cred) == 0 {
		return nil, ErrNoCredentials
	}
	ks := p.keys.Load()
	if p.cache != nil {
		if id := p.cache.get(cred, ks.gen, time.Now()); id != nil {
			return id, nil
		}
	}
	claims := jwt.MapClaims{}
	tok, err := p.parser.ParseWithClaims(string(cred), claims, func(t *jwt.Token) (any, error) {
		return p.keyFor(t, ks)
	})
	if err != nil {
		return nil, p.classifyJWTError(tok, err)
	}
	if !tok.Valid {
		return nil, invalid(reasonUnverifable, nil)
	}
	id, exp, err := p.identity(claims)
	if err != nil {
		return nil, err
	}
	if p.cache != nil {
		// The key set the token was verified with: keyFor may have refreshed it.
		p.cache.put(cred, id, exp.Add(p.leeway), p.keys.Load().gen)
	}
	return id, nil
}

// classifyJWTError turns a parse error into an *Error with a reason. tok is what the parser returned (it
// may be nil).
func (p *jwtProvider) classifyJWTError(tok *jwt.Token, err error) error {
	if tok != nil && !errors.Is(err, jwt.ErrTokenMalformed) {
		if alg, _ := tok.Header["alg"].(string); !p.algs[alg] {
			return invalid(reasonAlgorithm, err) // "none", or an algorithm not configured
		}
	}
	switch {
	case errors.Is(err, errUnknownKid):
		return invalid(reasonUnknownKey, err)
	case errors.Is(err, errAlgorithm):
		return invalid(reasonAlgorithm, err)
	case errors.Is(err, jwt.ErrTokenMalformed):
		return invalid(reasonMalformed, err)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return invalid(reasonSignature, err)
	case errors.Is(err, jwt.ErrTokenExpired):
		return invalid(reasonExpired, err)
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return invalid(reasonNotYet, err)
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return invalid(reasonIssuer, err)
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return invalid(reasonAudience, err)
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing), errors.Is(err, jwt.ErrTokenInvalidClaims):
		return invalid(reasonClaims, err)
	}
	return invalid(reasonUnverifable, err)
}

var errAlgorithm = errors.New("the key's type or alg does not match the token's algorithm")

// keyFor chooses the verification key for t from ks: a key with the token's kid (or, without a kid, every
// key) whose type and alg fit the token's algorithm. An unknown kid refreshes the set (rate-limited).
func (p *jwtProvider) keyFor(t *jwt.Token, ks *keySet) (any, error) {
	alg := t.Method.Alg()
	kid, _ := t.Header["kid"].(string)
	if _, present := t.Header["kid"]; present && kid == "" {
		return nil, errUnknownKid
	}
	keys, kidKnown := matchKeys(ks, alg, kid)
	if len(keys) == 0 && kid != "" && !kidKnown {
		if p.refreshForKid(ks.gen) {
			keys, kidKnown = matchKeys(p.keys.Load(), alg, kid)
		}
	}
	switch {
	case len(keys) == 1:
		return keys[0], nil
	case len(keys) > 1:
		set := jwt.VerificationKeySet{Keys: make([]jwt.VerificationKey, len(keys))}
		for i, k := range keys {
			set.Keys[i] = k
		}
		return set, nil
	case kidKnown:
		return nil, errAlgorithm // the kid exists, but for another key type or algorithm
	}
	return nil, errUnknownKid
}

// maxCandidates bounds the keys tried for a token without a kid.
const maxCandidates = 8

// matchKeys returns the keys of ks usable for alg (and kid, when not ""), and whether any key has kid.
func matchKeys(ks *keySet, alg, kid string) (out []any, kidKnown bool) {
	for i := range ks.keys {
		k := &ks.keys[i]
		if kid != "" {
			if k.ID != kid {
				continue
			}
			kidKnown = true
		}
		if !keyFits(k, alg) {
			continue
		}
		out = append(out, k.Public)
		if len(out) == maxCandidates {
			break
		}
	}
	return out, kidKnown
}

// keyFits: the key's type (and alg, when the key names one) must be the token's algorithm's. This is
// what rules out algorithm confusion: an HS* token is checked only with an "oct" key.
func keyFits(k *jwk.Key, alg string) bool {
	if k.Alg != "" && k.Alg != alg {
		return false
	}
	switch alg {
	case "HS256", "HS384", "HS512":
		b, ok := k.Public.([]byte)
		return ok && k.Kty == jwk.KtyOct && len(b) >= hmacMinKey(alg)
	case "RS256", "PS256":
		_, ok := k.Public.(*rsa.PublicKey)
		return ok && k.Kty == jwk.KtyRSA
	case "ES256":
		_, ok := k.Public.(*ecdsa.PublicKey)
		return ok && k.Kty == jwk.KtyEC
	case "EdDSA":
		_, ok := k.Public.(ed25519.PublicKey)
		return ok && k.Kty == jwk.KtyOKP
	}
	return false
}

// identity builds the Identity of verified claims and returns the token's expiry.
func (p *jwtProvider) identity(c jwt.MapClaims) (*Identity, time.Time, error) {
	sub, _ := c["sub"].(string)
	if sub == "" {
		return nil, time.Time{}, invalid(reasonNoSubject, nil)
	}
	exp, err := c.GetExpirationTime()
	if err != nil || exp == nil {
		return nil, time.Time{}, invalid(reasonClaims, err)
	}
	pr := principal.Principal{Subject: sub, Provider: p.name, Scopes: scopesOf(c)}
	for _, name := range p.forwardClaims {
		v, ok := c[name]
		if !ok {
			continue
		}
		var s string
		if str, ok := v.(string); ok {
			s = str
		} else {
			b, err := json.Marshal(v)
			if err != nil {
				continue
			}
			s = string(b)
		}
		pr.Claims = append(pr.Claims, principal.Claim{Name: name, Value: s})
	}
	id, err := NewIdentity(&pr)
	if err != nil {
		return nil, time.Time{}, invalid(reasonClaims, err)
	}
	return id, exp.Time, nil
}

// scopesOf reads "scope" (space-separated, RFC 8693) or "scp" (a string or an array of strings).
func scopesOf(c jwt.MapClaims) []string {
	if s, ok := c["scope"].(string); ok {
		return strings.Fields(s)
	}
	switch v := c["scp"].(type) {
	case string:
		return strings.Fields(v)
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			if s, ok := e.(string); ok && s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// hmacMinKey is the smallest key for an HMAC algorithm: the size of its hash (RFC 7518 section 3.2).
func hmacMinKey(alg string) int {
	switch alg {
	case "HS384":
		return 48
	case "HS512":
		return 64
	}
	return 32
}
