package config

import (
	"reflect"
	"strings"
)

// Closest returns the candidate nearest to word by edit distance, if it is
// near enough to be a typo (at most a third of the word's length, and at
// least 1 and at most 3 edits). It is how a mistyped key or command gets a
// "did you mean" instead of a list to read.
func Closest(word string, candidates []string) (string, bool) {
	best, bestD := "", -1
	for _, c := range candidates {
		d := editDistance(strings.ToLower(word), strings.ToLower(c))
		if bestD < 0 || d < bestD {
			best, bestD = c, d
		}
	}
	limit := max(1, min(3, len(word)/3))
	if bestD < 0 || bestD > limit {
		return "", false
	}
	return best, true
}

// editDistance is the Damerau-Levenshtein distance (optimal string
// alignment): a swapped pair of letters, the commonest typo, costs 1.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}

// keysAt returns the YAML keys allowed under the key path parent ("" for
// the top level, "sip", "trunks[0].auth"), read from Config's yaml tags so
// the list cannot drift from the struct. ok is false when parent is not a
// mapping with fixed keys.
func keysAt(parent string) ([]string, bool) {
	t := reflect.TypeOf(Config{})
	if parent != "" {
		for _, part := range strings.Split(parent, ".") {
			name, _, _ := strings.Cut(part, "[")
			f, ok := fieldByKey(t, name)
			if !ok {
				return nil, false
			}
			t = f.Type
			for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
				t = t.Elem()
			}
		}
	}
	if t.Kind() != reflect.Struct {
		return nil, false
	}
	var keys []string
	for i := range t.NumField() {
		if k := yamlKey(t.Field(i)); k != "" {
			keys = append(keys, k)
		}
	}
	return keys, true
}

func fieldByKey(t reflect.Type, key string) (reflect.StructField, bool) {
	if t.Kind() != reflect.Struct {
		return reflect.StructField{}, false
	}
	for i := range t.NumField() {
		if yamlKey(t.Field(i)) == key {
			return t.Field(i), true
		}
	}
	return reflect.StructField{}, false
}

func yamlKey(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	k, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if k == "-" {
		return ""
	}
	return k
}

// unknownKeyMsg is the message for an unknown key at path: the closest
// allowed key when one is near, else the list of allowed keys.
func unknownKeyMsg(path string) string {
	parent, key := "", path
	if i := strings.LastIndex(path, "."); i >= 0 {
		parent, key = path[:i], path[i+1:]
	}
	keys, ok := keysAt(parent)
	if !ok {
		return "unknown key"
	}
	if c, ok := Closest(key, keys); ok {
		return "unknown key (did you mean " + c + "?)"
	}
	where := parent
	if where == "" {
		where = "the top level"
	}
	return "unknown key (keys of " + where + ": " + strings.Join(keys, ", ") + ")"
}
