package mapping

import "testing"

func TestSmokeExample(t *testing.T) {
	cfg, err := Load("../config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tab, err := Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var ps Params
	r, res := tab.Match([]byte("GET"), []byte("/api/users/42"), &ps)
	if res != MatchOK || r.Name != "users" || string(r.AppendTag(nil, &ps)) != "users.42" {
		t.Fatalf("%v %v", r, res)
	}
}
