// Package webdemo is the browser demo page that `gateway -demo` serves at GET / and /demo/: rsocket-js
// 1.0.0-alpha.3 over the gateway's /rsocket route (a live clock.1000 stream and a chat channel) and a plain
// WebSocket chat over /ws/chat, both reaching the embedded demo RSocket service.
//
// The page and its bundle are embedded from static/. static/app.js is built from js/src with esbuild
// (`cd internal/webdemo/js && npm ci && npm run build`) and committed, so `go build` needs no npm. If it is
// missing, the page is still served and Handler answers /demo/app.js with a 503 that says how to build it.
//
// js/test holds the Node tests (rsocket-js 1.0.0-alpha.3 and 0.0.27 clients through the gateway) and the
// headless Chromium test, run by webdemo_test.go and test.sh.
package webdemo

import (
	"embed"
	"io/fs"
	"mime"
	"path"
	"strings"

	"github.com/valyala/fasthttp"
)

//go:embed static
var static embed.FS

// BuildHint says how to build the missing bundle.
const BuildHint = "the demo bundle internal/webdemo/static/app.js is missing: run `cd internal/webdemo/js && npm ci && npm run build` and rebuild the gateway"

// HasBundle reports whether the JavaScript bundle was embedded.
func HasBundle() bool {
	_, err := fs.Stat(static, "static/app.js")
	return err == nil
}

// Handler serves the demo: GET or HEAD of "/", "/demo" and "/demo/" return index.html, "/demo/<file>" and
// "/<file>" the embedded files. Anything else is 404 (JSON, like the gateway's other errors).
func Handler(ctx *fasthttp.RequestCtx) {
	if !ctx.IsGet() && !ctx.IsHead() {
		notFound(ctx)
		return
	}
	p := string(ctx.Path())
	switch p {
	case "/", "/demo", "/demo/", "/index.html", "/demo/index.html":
		p = "index.html"
	default:
		p = strings.TrimPrefix(strings.TrimPrefix(p, "/demo"), "/")
	}
	if p == "" || strings.Contains(p, "..") {
		notFound(ctx)
		return
	}
	b, err := static.ReadFile("static/" + p)
	if err != nil {
		if p == "app.js" {
			ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
			ctx.SetContentType("application/javascript; charset=utf-8")
			ctx.SetBodyString("document.body.insertAdjacentHTML('afterbegin', " + jsString(BuildHint) + ");\n")
			return
		}
		notFound(ctx)
		return
	}
	ct := mime.TypeByExtension(path.Ext(p))
	if ct == "" {
		ct = "application/octet-stream"
	}
	ctx.SetContentType(ct)
	ctx.Response.Header.Set("Cache-Control", "no-cache")
	ctx.SetBody(b)
}

func notFound(ctx *fasthttp.RequestCtx) {
	ctx.SetStatusCode(fasthttp.StatusNotFound)
	ctx.SetContentType("application/json")
	ctx.SetBodyString(`{"error":"no route","code":"NO_ROUTE"}` + "\n")
}

func jsString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\n", `\n`, "<", `\x3c`)
	return "'<p style=\"color:#a1260d\">" + r.Replace(s) + "</p>'"
}
