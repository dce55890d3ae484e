package mapping

import (
	"strings"
	"testing"
	"time"
)

const resumeYAML = `backends:
  demo:
    addresses: ["127.0.0.1:7000"]
%s
routes:
  - name: echo
    method: POST
    path: /echo
    backend: demo
    interaction: request-response
    route: echo
`

func TestBackendResumeKeys(t *testing.T) {
	c, err := Parse([]byte(strings.Replace(resumeYAML, "%s", "", 1)), "r.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if r := c.Backends["demo"].Resume; r.Enabled || r.SessionDuration.D() != 30*time.Second || r.Buffer != 1<<20 {
		t.Fatalf("defaults: %+v", r)
	}
	c, err = Parse([]byte(strings.Replace(resumeYAML, "%s",
		"    resume: {enabled: true, session_duration: 2m, buffer: 4MiB}", 1)), "r.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if r := c.Backends["demo"].Resume; !r.Enabled || r.SessionDuration.D() != 2*time.Minute || r.Buffer != 4<<20 {
		t.Fatalf("parsed: %+v", r)
	}
	_, err = Parse([]byte(strings.Replace(resumeYAML, "%s",
		"    resume: {enabled: true, session_duration: 0s, buffer: 100}", 1)), "r.yaml")
	for _, want := range []string{
		"r.yaml:4: backends.demo.resume.session_duration: must be greater than 0",
		"r.yaml:4: backends.demo.resume.buffer: must be between 4KiB and 1GiB",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v\nlacks %q", err, want)
		}
	}
}

const rsocketResumeYAML = `backends:
  demo:
    addresses: ["127.0.0.1:7000"]
routes:
  - name: browser
    path: /rsocket
    backend: demo
    interaction: rsocket
    rsocket:
      allow: ["*"]
%s
`

func TestRSocketResumeKeys(t *testing.T) {
	c, err := Parse([]byte(strings.Replace(rsocketResumeYAML, "%s", "      resume: {}", 1)), "r.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r := c.Routes[0].RSocket.Resume
	if r == nil || r.Defaulted().SessionDuration.D() != 2*time.Minute || r.Defaulted().Buffer != 1<<20 {
		t.Fatalf("defaults: %+v", r)
	}
	c, err = Parse([]byte(strings.Replace(rsocketResumeYAML, "%s", "      resume: {session_duration: 30s, buffer: 64KiB}", 1)), "r.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if r := c.Routes[0].RSocket.Resume; r.SessionDuration.D() != 30*time.Second || r.Buffer != 64<<10 {
		t.Fatalf("parsed: %+v", r)
	}
	_, err = Parse([]byte(strings.Replace(rsocketResumeYAML, "%s", "      resume: {session_duration: -1s, buffer: 100}", 1)), "r.yaml")
	for _, want := range []string{"routes[0].rsocket.resume.session_duration: negative duration", "routes[0].rsocket.resume.buffer: must be between 4KiB and 1GiB"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v\nlacks %q", err, want)
		}
	}
	c, err = Parse([]byte(strings.Replace(rsocketResumeYAML, "%s", "      routes: {}", 1)), "r.yaml")
	if err != nil || c.Routes[0].RSocket.Resume != nil {
		t.Fatalf("absent resume: %v %+v", err, c)
	}
}
