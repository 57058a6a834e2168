package psakit_test

import (
	"bufio"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The README's code is example_test.go as it is, after its package
// clause, so that what users copy compiles and runs (Example runs it).
func TestREADMEExample(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	code, ok := strings.CutPrefix(string(src), "package psakit_test\n\n")
	if !ok {
		t.Fatal("example_test.go does not start with its package clause and a blank line")
	}
	if !strings.HasPrefix(code, "import (") {
		t.Fatal("example_test.go has no import block after its package clause")
	}
	if !strings.Contains(string(readme), "```go\n"+code+"```\n") {
		t.Errorf("README.md does not show example_test.go (after its package clause) in a go code block; it should show:\n%s", code)
	}
}

// Doc comments cite nothing users do not have: the maintainers' own
// documents live outside the repository.
func TestDocsCiteNothingPrivate(t *testing.T) {
	banned := []string{"notes/", "notes §", "DESIGN.md", "design brief", "the brief"}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && strings.HasPrefix(d.Name(), ".") && path != "." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for n := 1; sc.Scan(); n++ {
			_, comment, ok := strings.Cut(sc.Text(), "//")
			if !ok {
				continue
			}
			for _, b := range banned {
				if strings.Contains(comment, b) {
					t.Errorf("%s:%d cites %q, which users do not have: say it here, or point to ARCHITECTURE.md", path, n, b)
				}
			}
		}
		return sc.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
}

// The example programs use only the public API (their tests may use
// more), so that users can copy them out of the repository and build them.
func TestExamplesUsePublicAPI(t *testing.T) {
	files, err := filepath.Glob("examples/*/*.go")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no example programs found")
	}
	fset := token.NewFileSet()
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			p, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(p, "/internal/") || strings.HasSuffix(p, "/internal") {
				t.Errorf("%s imports %s, which users cannot import from a copy of it", path, p)
			}
		}
	}
}
