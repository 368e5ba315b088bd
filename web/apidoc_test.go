package web

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

var (
	apiRouteRE = regexp.MustCompile(`^(GET|POST|PUT|PATCH|DELETE) /api/v1/\S*$`)
	apiDocRE   = regexp.MustCompile("^\\| `((?:GET|POST|PUT|PATCH|DELETE) /api/v1/[^`]*)` \\|")
)

// registeredAPIRoutes reads the JSON API's routes from the router's source:
// every "METHOD /api/v1/..." pattern given to a Handle/HandleFunc call or
// to a registration helper (page, h) in web and in the dialer, whose routes
// web mounts. A pattern that is not a literal would escape this list, so
// it fails the test instead.
func registeredAPIRoutes(t *testing.T) []string {
	t.Helper()
	var routes []string
	fset := token.NewFileSet()
	for _, dir := range []string{".", "../dialer"} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, path := range files {
			if strings.HasSuffix(path, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, path, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			ast.Inspect(f, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok || len(call.Args) == 0 {
					return true
				}
				var name string
				switch fn := call.Fun.(type) {
				case *ast.Ident:
					name = fn.Name
				case *ast.SelectorExpr:
					name = fn.Sel.Name
				}
				if !slices.Contains([]string{"Handle", "HandleFunc", "page", "h"}, name) {
					return true
				}
				switch arg := call.Args[0].(type) {
				case *ast.BasicLit:
					if arg.Kind != token.STRING {
						return true
					}
					p, err := strconv.Unquote(arg.Value)
					if err == nil && apiRouteRE.MatchString(p) {
						routes = append(routes, p)
					}
				case *ast.Ident:
					// The helpers' own parameter, passed on to the mux.
					if arg.Name != "pattern" {
						t.Errorf("%s: %s(%s, …): a route pattern must be a string literal so docs/API.md can be checked", fset.Position(call.Pos()), name, arg.Name)
					}
				default:
					t.Errorf("%s: %s(…): a route pattern must be a string literal so docs/API.md can be checked", fset.Position(call.Pos()), name)
				}
				return true
			})
		}
	}
	return routes
}

// docs/API.md documents every route of the JSON API and no other: a route
// added, removed or renamed without the reference fails here.
func TestAPIDocMatchesRoutes(t *testing.T) {
	routes := registeredAPIRoutes(t)
	if len(routes) < 30 {
		t.Fatalf("found only %d routes in the source: the scan is broken", len(routes))
	}
	doc, err := os.ReadFile("../docs/API.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]int{}
	for _, line := range strings.Split(string(doc), "\n") {
		if m := apiDocRE.FindStringSubmatch(line); m != nil {
			documented[m[1]]++
		}
	}
	registered := map[string]bool{}
	for _, r := range routes {
		if registered[r] {
			t.Errorf("route %s is registered twice", r)
		}
		registered[r] = true
		if documented[r] == 0 {
			t.Errorf("route %s is not in docs/API.md: add a row (roles, request, response, errors)", r)
		}
	}
	for r, n := range documented {
		if !registered[r] {
			t.Errorf("docs/API.md documents %s, which the router does not serve", r)
		}
		if n > 1 {
			t.Errorf("docs/API.md documents %s %d times", r, n)
		}
	}
}
