// Command jwtgen writes a JWK Set and a token signed with its key for the JWT trials of bench/http/run.sh
// (peer gateway-jwt): an RS256 key (2048 bits), issuer https://bench.rsgate.invalid, audience bench, valid
// for a day. Not for production use.
package main

import (
	"flag"
	"log"
	"os"
	"time"

	"github.com/rsgate/rsgate/internal/auth/authtest"
)

func main() {
	jwks := flag.String("jwks", "jwks.json", "JWK Set output file")
	token := flag.String("token", "jwt.token", "token output file")
	flag.Parse()
	k := authtest.RSA("bench", "RS256", 0)
	if err := os.WriteFile(*jwks, authtest.JWKS(k), 0o644); err != nil {
		log.Fatal(err)
	}
	tok := k.Sign(authtest.Claims("bench-user", "https://bench.rsgate.invalid", "bench", 24*time.Hour,
		map[string]any{"scope": "echo", "email": "bench@rsgate.invalid"}))
	if err := os.WriteFile(*token, []byte(tok), 0o600); err != nil {
		log.Fatal(err)
	}
}
