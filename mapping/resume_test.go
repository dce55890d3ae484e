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
