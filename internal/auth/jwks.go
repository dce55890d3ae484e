package auth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/rsgate/rsgate/internal/jwk"
)

// keySource reads the JWK Set document: a file (re-read only when its size or modification time changed)
// or a URL (fetched with a timeout and a size bound).
type keySource interface {
	// load returns the document, or changed == false when it is known not to have changed.
	load(ctx context.Context) (doc []byte, changed bool, err error)
	String() string
}

// errTooLarge: the document exceeds max_jwks_size.
var errTooLarge = errors.New("auth: JWK Set larger than max_jwks_size")

type fileSource struct {
	path    string
	max     int64
	size    int64
	modTime time.Time
}

func (f *fileSource) String() string { return f.path }

func (f *fileSource) load(context.Context) ([]byte, bool, error) {
	st, err := os.Stat(f.path)
	if err != nil {
		return nil, false, err
	}
	if st.Size() == f.size && st.ModTime().Equal(f.modTime) {
		return nil, false, nil
	}
	if st.Size() > f.max {
		return nil, false, fmt.Errorf("%w (%d bytes)", errTooLarge, st.Size())
	}
	fh, err := os.Open(f.path)
	if err != nil {
		return nil, false, err
	}
	defer fh.Close()
	doc, err := io.ReadAll(io.LimitReader(fh, f.max+1))
	if err != nil {
		return nil, false, err
	}
	if int64(len(doc)) > f.max {
		return nil, false, errTooLarge
	}
	f.size, f.modTime = st.Size(), st.ModTime()
	return doc, true, nil
}

type urlSource struct {
	url     string
	max     int64
	timeout time.Duration
	client  *http.Client
	etag    string
}

func (u *urlSource) String() string { return u.url }

func (u *urlSource) load(ctx context.Context) ([]byte, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, u.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.url, nil)
	if err != nil {
		return nil, false, err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	if u.etag != "" {
		req.Header.Set("If-None-Match", u.etag)
	}
	resp, err := u.client.Do(req)
	if err != nil {
		return nil, false, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotModified:
		return nil, false, nil
	default:
		return nil, false, fmt.Errorf("auth: GET %s: status %s", u.url, strconv.Itoa(resp.StatusCode))
	}
	if resp.ContentLength > u.max {
		return nil, false, fmt.Errorf("%w (%d bytes)", errTooLarge, resp.ContentLength)
	}
	doc, err := io.ReadAll(io.LimitReader(resp.Body, u.max+1))
	if err != nil {
		return nil, false, err
	}
	if int64(len(doc)) > u.max {
		return nil, false, errTooLarge
	}
	u.etag = resp.Header.Get("ETag")
	return doc, true, nil
}

// newHTTPClient is the JWKS client: no redirects to other schemes than https (an http URL is allowed only
// for loopback by validation), bounded by the per-fetch context.
func newHTTPClient() *http.Client {
	return &http.Client{
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 3 {
				return errors.New("auth: too many redirects")
			}
			if req.URL.Scheme != "https" && req.URL.Scheme != via[0].URL.Scheme {
				return errors.New("auth: redirect to a non-https URL")
			}
			return nil
		},
	}
}

// keySet is one decoded JWK Set, immutable.
type keySet struct {
	keys []jwk.Key
	gen  uint64
}
