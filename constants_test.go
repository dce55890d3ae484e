package rsgate

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The protocol's limits and codes are defined once, in rsocket/frame; other packages refer to them
// (issue 13: MinMTU, CodeApplicationError and MaxFrameLen were copied as literals into mapping and
// rsocket/transport). This finds every constant of these names whose value is a literal.
func TestProtocolConstantsDefinedOnce(t *testing.T) {
	names := map[string]bool{"MinMTU": true, "MaxFrameLen": true, "CodeApplicationError": true, "MaxRequestN": true, "MaxWindow": true}
	fset := token.NewFileSet()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			skip := path == "bench" || path == "examples" || d.Name() == "node_modules" || d.Name() == "testdata" ||
				(path != "." && strings.HasPrefix(d.Name(), "."))
			if skip {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if !names[n.Name] || i >= len(vs.Values) || !literal(vs.Values[i]) {
						continue
					}
					if dir := filepath.ToSlash(filepath.Dir(path)); dir != "rsocket/frame" {
						t.Errorf("%s: %s is defined as a literal; refer to rsocket/frame's", fset.Position(n.Pos()), n.Name)
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// literal reports whether e mentions no identifier (only literals and operators).
func literal(e ast.Expr) bool {
	lit := true
	ast.Inspect(e, func(n ast.Node) bool {
		if _, ok := n.(*ast.Ident); ok {
			lit = false
		}
		return lit
	})
	return lit
}

// No comment or document points to a design document the repository does not have (ARCHITECTURE.md is the
// design as built).
func TestNoReferenceToMissingDesignDoc(t *testing.T) {
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, ".md") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if strings.Contains(string(b), "DESIGN"+".md") {
			if _, err := os.Stat(filepath.Join(filepath.Dir(path), "DESIGN"+".md")); err != nil {
				t.Errorf("%s refers to DESIGN"+".md, which is not in the repository", path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
