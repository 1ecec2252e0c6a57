package topic

import "strings"

// Match reports whether filter matches the topic name, with MQTT 3.1.1 semantics: '+'
// matches one level (possibly empty), a last '#' matches the parent level and any number
// of levels below it ("a/#" matches "a", "a/" and "a/b/c"), and a filter starting with a
// wildcard does not match a name starting with '$'.
//
// filter and name are expected to be valid (ValidateFilter, ValidateName); on other
// input Match does not panic, and its answer is unspecified. Match does not allocate.
func Match(filter, name string) bool {
	if len(filter) == 0 || len(name) == 0 {
		return false
	}
	if filter == name {
		return true // a valid name has no wildcards: the filter is exact
	}
	if name[0] == '$' && (filter[0] == '+' || filter[0] == '#') {
		return false
	}
	// i and j index filter and name; at the top of the loop both are at the start of a
	// level.
	i, j := 0, 0
	for {
		switch {
		case i < len(filter) && filter[i] == '#':
			return true // the rest of the name, even none of it
		case i < len(filter) && filter[i] == '+':
			i++
			for j < len(name) && name[j] != '/' {
				j++
			}
		default:
			for ; i < len(filter) && filter[i] != '/'; i, j = i+1, j+1 {
				if j == len(name) || name[j] != filter[i] {
					return false
				}
			}
			if j < len(name) && name[j] != '/' {
				return false
			}
		}
		// Both levels ended: each index is at a '/' or at the end.
		switch {
		case i == len(filter):
			return j == len(name)
		case j == len(name):
			// The name is used up; only a trailing "#" (its parent rule) still matches.
			return filter[i+1:] == "#"
		}
		i, j = i+1, j+1
	}
}

// cutLevel splits s at its first '/': the level before it, what follows, and whether
// there was a '/'.
func cutLevel(s string) (level, rest string, more bool) {
	if i := strings.IndexByte(s, '/'); i >= 0 {
		return s[:i], s[i+1:], true
	}
	return s, "", false
}
